from tests.store.backends import backend, database_url, store

__all__ = ["backend", "database_url", "store"]
