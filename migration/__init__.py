"""Legacy SQLite -> PostgreSQL internals; ``migrate_to_postgresql.py`` is the entry point."""
