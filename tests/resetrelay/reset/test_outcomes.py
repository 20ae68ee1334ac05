"""The replay store: the first final answer for a webhook-id, kept verbatim."""

from __future__ import annotations

import pytest

from resetrelay.reset.outcomes import Answer, Replays
from storage.database import Database
from tests.conftest import Clock

pytestmark = pytest.mark.anyio


async def test_the_first_answer_is_kept_and_given_again(database: Database, clock: Clock) -> None:
    replays = Replays(database, clock)
    assert await replays.find("msg_1") is None
    first = Answer(200, '{"valid":false,"reason":"used"}')
    assert await replays.keep("msg_1", "password_reset.verify", first) is None
    assert await replays.find("msg_1") == first
    # A concurrent delivery that answered second gets the first answer back.
    later = Answer(410, '{"error":"ticket_invalid"}')
    assert await replays.keep("msg_1", "password_reset.verify", later) == first
    assert await replays.find("msg_1") == first
