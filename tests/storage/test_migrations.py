from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from storage.migrate import sync_url, upgrade
from storage.models import metadata


def test_migrations_match_the_models_and_rerun_cleanly(database_url: str) -> None:
    upgrade(database_url)  # already at head: a second run changes nothing
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()
