"""Persistence: SQLAlchemy 2.0 (async) tables, Alembic migrations, and the repository the rest of knotflow
uses."""
