"""Which store the settings ask for: PostgreSQL when a database URL is set (replicas share it), else the
embedded SQLite file in the data folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .protocols import Store
from .sqlite import SqliteStore

if TYPE_CHECKING:  # storage imports no layer above it at run time (tests/test_layout.py)
    from ..config import Settings


def make_store(settings: Settings) -> Store:
    """The store, not opened yet: no network is touched, so this may run outside any event loop."""
    if settings.database is not None:
        from .postgres import PostgresStore  # psycopg loads only when a database is configured

        return PostgresStore(settings.database.get_secret_value(), min_size=settings.database_pool_min,
                             max_size=settings.database_pool_size,
                             connect_timeout=settings.database_connect_timeout,
                             timeout=settings.database_timeout, open_timeout=settings.database_open_timeout,
                             reconnect_timeout=settings.database_reconnect_timeout)
    return SqliteStore(settings.data_dir / "bus.sqlite3")


async def open_store(settings: Settings) -> Store:
    """The store, opened (connected, its schema made). Raises StoreUnavailable when the database is away."""
    store = make_store(settings)
    await store.open()
    return store
