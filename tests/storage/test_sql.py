"""storage.sql: a model's Table, and an upsert that speaks the connection's dialect."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.database import Database
from storage.models import MailMessage, UsedToken
from storage.sql import table, upsert
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


def test_table_is_the_models_table() -> None:
    tokens = table(UsedToken)
    assert isinstance(tokens, Table)
    assert tokens.name == "used_tokens"
    assert table(MailMessage).name == "mail_messages"
    assert set(tokens.c.keys()) == {"jti", "expires_at"}


async def test_upsert_matches_the_dialect(database: Database) -> None:
    expected = postgresql.Insert if database.dialect == "postgresql" else sqlite.Insert
    async with database.begin() as conn:
        assert isinstance(upsert(conn, table(UsedToken)), expected)


async def test_upsert_updates_on_conflict(database: Database, clock: Clock) -> None:
    tokens = table(UsedToken)
    later = clock() + timedelta(hours=2)
    async with database.begin() as conn:
        for expires_at in (clock(), later):
            statement = upsert(conn, tokens).values(jti="j", expires_at=expires_at)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["jti"], set_={"expires_at": statement.excluded.expires_at}
                )
            )
    async with database.read() as conn:
        rows = (await conn.execute(select(tokens.c.jti, tokens.c.expires_at))).all()
    assert [(jti, expires_at) for jti, expires_at in rows] == [("j", later)]
