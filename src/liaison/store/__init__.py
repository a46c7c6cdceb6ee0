"""The store: schema, migrations and queries (SQLAlchemy Core) on SQLite or PostgreSQL."""
