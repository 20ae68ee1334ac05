"""The mail's one-time code (reset.codes) through the signed HTTP path: the service
in-process, the Auth0 emulator over real HTTP, mail to a real aiosmtpd server, on
SQLite and PostgreSQL (`database_url`)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from devkit.emulator import create_emulator
from resetrelay.logs import quiet_libraries
from resetrelay.reset.codes import ALPHABET, CodeCodec, grouped, normalise
from tests.conftest import SECRET_KEY, Clock
from tests.resetrelay.reset.test_flow import JANE, STRONG, USERS, Stack
from tests.support import serve_in_thread

pytestmark = pytest.mark.anyio

REDEEM = "password_reset.redeem_code"
UNKNOWN = {"valid": False, "reason": "unknown"}
_CODE_LINE = re.compile(r"code on the reset page: ([A-Z2-9]{4}-[A-Z2-9]{4})")


@pytest.fixture
def emulator_url() -> Iterator[str]:
    app = create_emulator(domain="acme.eu.auth0.com", users=USERS)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def start(service: Callable[..., Any], emulator_url: str, clock: Clock) -> Callable[..., Any]:
    """`async with start(**env) as stack`: the service with these settings."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(**env: str) -> AsyncIterator[Stack]:
        async with service(emulator_url, **env) as (client, runtime, smtp):
            yield Stack(client, runtime, emulator_url, smtp, clock)

    return run


@pytest.fixture
async def stack(start: Callable[..., Any]) -> AsyncIterator[Stack]:
    async with start() as stack:
        yield stack


def code_in(mail: Any) -> str | None:
    """The code of a mail, read from its text part; the HTML part must carry the same."""
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    found = _CODE_LINE.search(plain)
    if found is None:
        assert "rr-code" not in html
        return None
    assert f">{found.group(1)}</strong>" in html
    return found.group(1)


async def mailed(stack: Stack, email: str = JANE) -> tuple[str, str]:
    """Request a reset; the (link ticket, code) of its mail."""
    assert (await stack.send("password_reset.requested", email=email)).status_code == 202
    await stack.drain()
    code = code_in(stack.mails()[-1])
    assert code is not None
    return stack.ticket_from_last_mail(), code


def wrong(code: str) -> str:
    """Another well-formed code: the last symbol changed."""
    last = ALPHABET[(ALPHABET.index(code[-1]) + 1) % len(ALPHABET)]
    return code[:-1] + last


# -- the code itself ------------------------------------------------------------------


def test_codes_are_eight_unambiguous_symbols_and_normalise() -> None:
    codec = CodeCodec(SECRET_KEY)
    codes = {codec.for_ticket(f"id-{n}") for n in range(2000)}
    assert len(codes) == 2000  # no collisions in a small sample
    assert all(len(c) == 8 and set(c) <= set(ALPHABET) for c in codes)
    assert not set("01OIL") & set(ALPHABET) and len(ALPHABET) == 31
    code = codec.for_ticket("id-1")
    assert codec.for_ticket("id-1") == code  # made again, never stored
    assert CodeCodec("another-secret-key-of-enough-length-000").for_ticket("id-1") != code
    shown = grouped(code)
    for typed in (shown, shown.lower(), f"  {code.lower()} ", f"{code[:4]} {code[4:]}"):
        assert normalise(typed) == code
    for bad in (
        "",
        "K7QM-3XP",
        "K7QM-3XPA9",
        "K7QM-3XP0",
        "O1IL2345",
        "K7QM_3XPA",
        "\uff2b" * 8,
    ):
        assert normalise(bad) is None


# -- the happy path ---------------------------------------------------------------------


async def test_code_on_another_device_resets_the_password(stack: Stack) -> None:
    link, code = await mailed(stack)
    # The "second device" knows only the address and the code, typed loosely.
    redeemed = await stack.send(REDEEM, email="  Jane@Example.com ", code=f" {code.lower()} ")
    assert redeemed.status_code == 200, redeemed.text
    body = redeemed.json()
    ticket = body.pop("ticket")
    assert ticket != link and len(ticket) == 43
    verify = (await stack.send("password_reset.verify", ticket=ticket)).json()
    assert body == verify  # exactly verify's answer, plus the ticket
    assert body["valid"] is True and body["email"] == "j***@example.com"
    assert "policy" in body
    # The link still works beside it; the code is spent.
    assert (await stack.send("password_reset.verify", ticket=link)).json()["valid"] is True
    assert (await stack.send(REDEEM, email=JANE, code=code)).json() == UNKNOWN

    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert (done.status_code, done.json()) == (200, {"status": "completed"})
    assert len(stack.password_patches()) == 1
    # One row: after the confirm both tickets answer `used`.
    for used in (ticket, link):
        assert (await stack.send("password_reset.verify", ticket=used)).json() == {
            "valid": False,
            "reason": "used",
        }
    again = await stack.send("password_reset.confirm", ticket=link, new_password=STRONG + "x")
    assert again.status_code == 410 and again.json()["reason"] == "used"


async def test_breached_and_blocked_mails_carry_a_code_too(stack: Stack) -> None:
    from resetrelay.reset.requests import issue

    now = stack.clock()
    for purpose in ("breached", "blocked"):
        async with stack.runtime.db.begin() as conn:
            await issue(
                conn,
                stack.runtime.settings,
                stack.runtime.codec,
                user_id="auth0|jane",
                email=JANE,
                connection="Username-Password-Authentication",
                locale="fr",
                purpose=purpose,
                now=now,
            )
        await stack.drain()
        mail = stack.mails()[-1]
        plain = mail.get_body(("plain",)).get_content()
        found = re.search(r"Ou saisissez ce code sur la page de réinitialisation : (\S+)", plain)
        assert found is not None, plain
        redeemed = await stack.send(REDEEM, email=JANE, code=found.group(1))
        assert redeemed.json()["valid"] is True and redeemed.json()["locale"] == "fr"


async def test_replayed_redeem_gets_the_first_answer_and_stores_no_ticket(stack: Stack) -> None:
    _, code = await mailed(stack)
    first = await stack.send(REDEEM, event_id="msg_redeem", email=JANE, code=code)
    again = await stack.send(REDEEM, event_id="msg_redeem", email=JANE, code=code)
    assert first.json()["valid"] is True
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    async with stack.runtime.db.begin() as conn:
        kept = (await conn.execute(text("SELECT answer FROM inbound_events"))).scalars().all()
    assert kept and first.json()["ticket"] not in "".join(kept)


# -- wrong, capped, closed ------------------------------------------------------------


async def test_wrong_unknown_and_no_ticket_answer_alike(stack: Stack) -> None:
    _, code = await mailed(stack)
    answers = [
        await stack.send(REDEEM, email=JANE, code=wrong(code)),
        await stack.send(REDEEM, email="nobody@example.com", code=code),
        await stack.send(REDEEM, email="sam@example.com", code=code),  # social: no ticket
    ]
    for answer in answers:
        assert (answer.status_code, answer.json()) == (200, UNKNOWN)
        assert answer.content == answers[0].content
        assert set(answer.headers) == set(answers[0].headers)
    assert (await stack.send(REDEEM, email=JANE, code=code)).json()["valid"] is True


async def test_five_wrong_codes_void_the_code_not_the_link(stack: Stack) -> None:
    link, code = await mailed(stack)
    for _ in range(5):
        assert (await stack.send(REDEEM, email=JANE, code=wrong(code))).json() == UNKNOWN
    assert (await stack.send(REDEEM, email=JANE, code=code)).json() == UNKNOWN
    assert (await stack.send("password_reset.verify", ticket=link)).json()["valid"] is True


async def test_per_address_cap_refuses_even_the_right_code(start: Callable[..., Any]) -> None:
    async with start(CODE_ATTEMPTS_PER_EMAIL="3/hour", RATE_LIMIT_PER_EMAIL="10/hour") as stack:
        _, code = await mailed(stack)
        for _ in range(3):
            await stack.send(REDEEM, email="jane@example.com", code=wrong(code))
        # A new mail (a new ticket, its own per-ticket count) does not lift the cap.
        _, code = await mailed(stack)
        assert (await stack.send(REDEEM, email=JANE, code=code)).json() == UNKNOWN
        stack.clock.advance(3600)  # the window has slid past those redeems
        _, code = await mailed(stack)
        assert (await stack.send(REDEEM, email=JANE, code=code)).json()["valid"] is True
        metrics = stack.runtime.metrics.render().decode()
        assert 'resetrelay_code_redeems_total{outcome="capped"} 1.0' in metrics


async def test_expired_used_and_voided_tickets_codes_are_worthless(stack: Stack) -> None:
    link, code = await mailed(stack)
    await stack.send("password_reset.confirm", ticket=link, new_password=STRONG)
    await stack.drain()  # the "changed" mail out of the way
    assert (await stack.send(REDEEM, email=JANE, code=code)).json() == UNKNOWN  # used

    _, old = await mailed(stack)
    _, new = await mailed(stack)  # voids the older ticket, and its code
    assert (await stack.send(REDEEM, email=JANE, code=old)).json() == UNKNOWN
    stack.clock.advance(3601)
    assert (await stack.send(REDEEM, email=JANE, code=new)).json() == UNKNOWN  # expired


async def test_mail_codes_off(start: Callable[..., Any]) -> None:
    async with start(MAIL_CODES="false") as stack:
        assert (await stack.send("password_reset.requested", email=JANE)).status_code == 202
        await stack.drain()
        mail = stack.mails()[-1]
        assert code_in(mail) is None
        # Even the code the ticket would have: nothing redeems with codes off.
        async with stack.runtime.db.begin() as conn:
            ticket_id = (await conn.execute(text("SELECT id FROM tickets"))).scalar_one()
        code = stack.runtime.codes.codec.for_ticket(ticket_id)
        assert (await stack.send(REDEEM, email=JANE, code=code)).json() == UNKNOWN


# -- hostile input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": JANE}, "data.code"),
        ({"code": "K7QM-3XPA"}, "data.email"),
        ({"email": JANE, "code": "K7QM-3XP"}, "data.code"),
        ({"email": JANE, "code": "K7QM-3XP0"}, "data.code"),
        ({"email": JANE, "code": "x" * 33}, "data.code"),
        ({"email": JANE, "code": "K7QM3XPA' OR 1=1 --"}, "data.code"),
        ({"email": JANE, "code": 12345678}, "data.code"),
        ({"email": JANE, "code": ["K7QM-3XPA"]}, "data.code"),
        ({"email": JANE, "code": "K7QM\x003XPA"}, "data.code"),
        ({"email": "not-an-address", "code": "K7QM-3XPA"}, "data.email"),
        ({"email": "a@x.co,evil@y.co", "code": "K7QM-3XPA"}, "data.email"),
        ({"email": "a" * 300 + "@x.co", "code": "K7QM-3XPA"}, "data.email"),
        ({"email": {"$ne": ""}, "code": "K7QM-3XPA"}, "data.email"),
    ],
)
async def test_malformed_codes_and_addresses_are_400(
    stack: Stack, data: dict[str, Any], field: str
) -> None:
    answer = await stack.send(REDEEM, **data)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "invalid_payload" and body["message"].startswith(field)


# -- concurrency and hygiene ---------------------------------------------------------------


async def test_two_concurrent_redeems_of_one_code_mint_one_ticket(stack: Stack) -> None:
    _, code = await mailed(stack)
    answers: list[dict[str, Any]] = []

    async def redeem() -> None:
        answers.append((await stack.send(REDEEM, email=JANE, code=code)).json())

    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(redeem)
    assert sorted(a["valid"] for a in answers) == [False, True]
    assert UNKNOWN in answers


async def test_no_code_ticket_or_address_stored_or_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    quiet_libraries()
    caplog.set_level(logging.DEBUG)
    _, code = await mailed(stack)
    await stack.send(REDEEM, email=JANE, code=wrong(code))
    ticket = (await stack.send(REDEEM, email=JANE, code=code)).json()["ticket"]
    await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    await stack.drain()
    secrets_ = (code, code.replace("-", ""), wrong(code), ticket)
    dumped = []
    async with stack.runtime.db.begin() as conn:
        for table in ("tickets", "jobs", "mail_messages", "inbound_events", "rate_events"):
            dumped.append(repr((await conn.execute(text(f"SELECT * FROM {table}"))).all()))
    dump = "\n".join(dumped)
    assert not any(s in dump for s in secrets_)
    logged = "\n".join(
        r.getMessage() + repr(getattr(r, "fields", ""))
        for r in caplog.records
        if r.levelno >= logging.getLogger(r.name).getEffectiveLevel()
        and not r.name.startswith("mail.log")
    )
    assert not any(s in logged for s in (*secrets_, JANE))


async def test_forgetting_the_person_takes_the_kept_redeem_answer(stack: Stack) -> None:
    from storage import erasure

    _, code = await mailed(stack)
    redeemed = await stack.send(REDEEM, event_id="msg_forget", email=JANE, code=code)
    assert redeemed.json()["valid"] is True
    person = erasure.Person.of(emails=[JANE])
    counts = await stack.runtime.db.run(lambda conn: erasure.erase(conn, person))
    assert counts["tickets"] == 1 and counts["inbound_events"] == 1
    # Replayed after the erasure, the id is free again, and the code's ticket is gone.
    again = await stack.send(REDEEM, event_id="msg_forget", email=JANE, code=code)
    assert again.json() == UNKNOWN


# -- attacks ---------------------------------------------------------------------------------


async def test_many_concurrent_wrong_codes_count_every_miss(stack: Stack) -> None:
    # Ten guesses at once for one address: each miss is counted (none lost to a race
    # between the reads and the UPDATE), so the code is void and the right one comes
    # too late.
    link, code = await mailed(stack)
    guesses = [code[:-2] + a + b for a in ALPHABET[:2] for b in ALPHABET[:5]]
    guesses = [g for g in guesses if g != code][:10]
    answers: list[dict[str, Any]] = []

    async def redeem(guess: str) -> None:
        answers.append((await stack.send(REDEEM, email=JANE, code=guess)).json())

    async with anyio.create_task_group() as tg:
        for guess in guesses:
            tg.start_soon(redeem, guess)
    assert answers == [UNKNOWN] * len(guesses)
    async with stack.runtime.db.begin() as conn:
        row = (await conn.execute(text("SELECT code_attempts, code_state FROM tickets"))).one()
    assert row.code_attempts == 5  # the fifth miss voided it; later ones found no open code
    assert (await stack.send(REDEEM, email=JANE, code=code)).json() == UNKNOWN
    assert (await stack.send("password_reset.verify", ticket=link)).json()["valid"] is True


@pytest.mark.parametrize(
    "spelling",
    [
        "\uff2b\uff17\uff31\uff2d-\uff13\uff38\uff30\uff21",  # fullwidth letters and digits
        "K7QM\u200b3XPA",  # a zero-width space inside
        "\u041a7QM-3XP\u0410",  # Cyrillic Ka and A, look-alikes of K and A
        "\u017f\u017f\u017f\u017f\u017f\u017f\u017f\u017f",  # long s: upper() makes it S
        "\u00df\u00df\u00df\u00df",  # sharp s: upper() makes it SS, so 8 symbols
    ],
)
async def test_codes_are_plain_ascii_only(stack: Stack, spelling: str) -> None:
    # Only the mail's own symbols: Unicode case mapping must not turn other characters
    # into a code (`ß`.upper() is `SS`), and a refused spelling spends no attempt.
    assert normalise(spelling) is None
    answer = await stack.send(REDEEM, email=JANE, code=spelling)
    assert answer.status_code == 400 and answer.json()["message"].startswith("data.code")


async def test_a_replayed_redeem_after_the_reset_hands_back_only_a_dead_ticket(
    stack: Stack,
) -> None:
    _, code = await mailed(stack)
    first = await stack.send(REDEEM, event_id="msg_once", email=JANE, code=code)
    ticket = first.json()["ticket"]
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert done.status_code == 200
    await stack.drain()
    again = await stack.send(REDEEM, event_id="msg_once", email=JANE, code=code)
    assert again.headers["idempotent-replayed"] == "true"
    # The same answer (idempotency), but its ticket settles nothing any more.
    assert again.json()["ticket"] == ticket
    for event in ("password_reset.verify", "password_reset.confirm"):
        data: dict[str, Any] = {"ticket": ticket}
        if event.endswith("confirm"):
            data["new_password"] = STRONG + "!"
        answer = await stack.send(event, **data)
        assert "used" in answer.text, answer.text
    # A fresh delivery of the spent code is a plain miss.
    assert (await stack.send(REDEEM, email=JANE, code=code)).json() == UNKNOWN


async def test_the_per_address_cap_holds_under_concurrent_redeems(
    start: Callable[..., Any],
) -> None:
    # Ten redeems at once with a cap of three: exactly three are admitted (the window's
    # count and insert are one decision per address, also on PostgreSQL), and the right
    # code among the refused ones redeems nothing.
    async with start(CODE_ATTEMPTS_PER_EMAIL="3/hour") as stack:
        _, code = await mailed(stack)
        answers: list[dict[str, Any]] = []

        async def redeem(guess: str) -> None:
            answers.append((await stack.send(REDEEM, email=JANE, code=guess)).json())

        async with anyio.create_task_group() as tg:
            for n in range(10):
                guess = code[:-1] + ALPHABET[n] if ALPHABET[n] != code[-1] else wrong(wrong(code))
                tg.start_soon(redeem, guess)
        async with stack.runtime.db.begin() as conn:
            admitted = (
                await conn.execute(text("SELECT count(*) FROM rate_events WHERE key LIKE 'code:%'"))
            ).scalar_one()
        assert admitted == 3 and answers == [UNKNOWN] * 10
        assert (await stack.send(REDEEM, email=JANE, code=code)).json() == UNKNOWN  # capped
