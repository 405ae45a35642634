"""The application's file data into PostgreSQL: readers, loader, verify, rollback, backups."""
