"""Shared fixtures.

Async tests run on anyio's pytest plugin (asyncio backend). Every test that
takes `database` runs once per backend: SQLite always, PostgreSQL too when
TEST_DATABASE_URL is set (`.ci/run` sets it). SQLite gets a fresh migrated
file per test; PostgreSQL is migrated once per session and truncated before
each test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, make_url, text

from resetrelay.settings import Settings, normalise_database_url
from storage.database import Database
from storage.migrate import sync_url, upgrade
from storage.models import metadata
from tests.mail.servers import HOST, Recorder, Server, StartServer, free_port

# The Auth0 emulator and client fixtures, shared by tests/identity and tests/devkit.
pytest_plugins = ["tests.auth0_fixtures"]

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgres"] if PG_URL else ["sqlite"]
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"


def pytest_report_header(config: pytest.Config) -> str:
    return f"resetrelay databases under test: {', '.join(BACKENDS)}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """A frozen, steppable clock (the `now()` seam of every component)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(normalise_database_url(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> Iterator[str]:
    """A database of this run's own, made next to TEST_DATABASE_URL's and dropped at
    the end, so two test runs against one server never truncate each other's rows."""
    admin_url = make_url(sync_url(normalise_database_url(PG_URL)))
    name = f"resetrelay_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = normalise_database_url(admin_url.set(database=name).render_as_string(hide_password=False))
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = create_engine(sync_url(url))
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "resetrelay.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield normalise_database_url(f"sqlite:///{path}")
    else:
        url = request.getfixturevalue("postgres_migrated")
        _truncate_postgres(url)
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


def make_env(**overrides: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": "sqlite:///./unused.db",
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SECRET_KEY": SECRET_KEY,
        "RESET_URL": "https://www.example.com/account/reset?ticket={ticket}",
        "MAIL_FROM": "Acme <no-reply@acme.example>",
        "BRAND_NAME": "Acme",
        "SMTP_URL": "smtp://127.0.0.1:1025",
        "AUTH0_DOMAIN": "acme.eu.auth0.com",
        "AUTH0_CLIENT_ID": "emulator-client",
        "AUTH0_CLIENT_SECRET": "emulator-secret",
        "INLINE_WORKER": "false",
        "AUTO_MIGRATE": "false",
        # No breach check unless a test points it at a local range API: the default is the
        # public API, and tests never reach the internet.
        "PWNED_PASSWORDS_URL": "",
    }
    env.update(overrides)
    return env


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    def build(database_url: str = "sqlite:///./unused.db", **overrides: str) -> Settings:
        return Settings.from_env(make_env(DATABASE_URL=database_url, **overrides))

    return build


@pytest.fixture
def smtp_server() -> Iterator[StartServer]:
    """Start aiosmtpd servers on free loopback ports; all stop at teardown."""
    started: list[Controller] = []

    def start(handler: Recorder | None = None, **kwargs: Any) -> Server:
        controller = Controller(
            handler if handler is not None else Recorder(),
            hostname=HOST,
            port=free_port(),
            server_hostname="mx.test",
            **kwargs,
        )
        controller.start()
        started.append(controller)
        return Server(controller, controller.handler)

    yield start
    for controller in started:
        with contextlib.suppress(AssertionError):  # a test may have stopped it already
            controller.stop()
