"""The index: SQLAlchemy over SQLite (embedded default) or PostgreSQL."""
