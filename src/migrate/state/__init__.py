"""The project's state under `.migrate/`: the SQLite journal and the project lock."""
