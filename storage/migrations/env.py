"""Alembic environment: online migrations only, one transaction, serialised.

On PostgreSQL an advisory lock keeps two release processes from migrating at
once; on SQLite the immediate transaction does the same.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from storage.models import metadata

config = context.config


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(7212024)"))
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            if connection.dialect.name == "sqlite":
                # WAL is a property of the file: set it once here, so processes that
                # open a new database together never race to switch it (the switch does
                # not wait on the busy timeout; it fails at once, "database is locked").
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
                connection.commit()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(7212024)"))
                connection.commit()
    engine.dispose()


run()
