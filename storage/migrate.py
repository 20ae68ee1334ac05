"""Schema creation and upgrades through Alembic (`resetrelay migrate`), and whether a
database's schema is the one this code expects."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import InterfaceError, OperationalError

from storage.database import Database, StorageUnavailable

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
    """Bring the schema to `revision`; running it again changes nothing. A database
    that does not answer raises StorageUnavailable."""
    try:
        command.upgrade(alembic_config(database_url), revision)
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable(str(exc.orig).strip().splitlines()[0]) from exc


@cache
def head() -> str:
    """The newest migration this code ships."""
    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if revision is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("no migrations found")
    return revision


@dataclass(frozen=True)
class SchemaState:
    revision: str | None  # what the database says; None: never migrated
    head: str

    @property
    def current(self) -> bool:
        return self.revision == self.head

    def describe(self) -> str:
        if self.revision is None:
            return "the database has no schema yet: run `resetrelay migrate`"
        if self.current:
            return f"the schema is at the newest migration ({self.head})"
        return (
            f"the schema is at migration {self.revision}, this version needs {self.head}: "
            "run `resetrelay migrate`"
        )


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


async def schema_state(db: Database) -> SchemaState:
    """Where the database's schema stands against this code's migrations."""
    return SchemaState(await db.run_read(_revision), head())
