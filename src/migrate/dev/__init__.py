"""`migrate dev up | down | status`: the migrated system on the local Docker engine.

- `plan`: the containers as data (names, labels, environment per role), computed
  with no engine;
- `engine`: the Docker SDK calls (the only module that imports `docker`);
- `probe`: readiness over HTTP (`/readyz`), Redis (PING) and PostgreSQL (SSLRequest);
- `state`: `.migrate/dev.json`, what `dev up` started (no secrets);
- `verbs`: `up`, `down`, `status` as typed functions over a project directory.
"""
