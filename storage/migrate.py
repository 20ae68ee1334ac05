"""Schema creation and upgrades through Alembic (`resetrelay migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # `%` would be taken for interpolation by configparser.
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return config


def sync_url(url: str) -> str:
    """Alembic runs synchronously: the same database through the sync driver."""
    return url.replace("sqlite+aiosqlite://", "sqlite://", 1)  # psycopg 3 serves both modes


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema to `revision`; running it again changes nothing."""
    command.upgrade(alembic_config(database_url), revision)
