"""The tenant's password policy through the real HTTP path: the service in-process, the
Auth0 emulator on a loopback port, a real SMTP server, on every test database.

The emulator's PATCH is set to enforce nothing (what an Auth0 community article says a
Management API PATCH does): every refusal here is the service's own check.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from devkit.emulator import PasswordPolicy, create_emulator
from devkit.emulator.connections import directory
from resetrelay.logs import quiet_libraries
from tests.conftest import Clock
from tests.resetrelay.reset.test_flow import JANE, STRONG, USERS, Stack, request_ticket
from tests.support import serve_in_thread

pytestmark = pytest.mark.anyio

LAX = PasswordPolicy(patch_enforces="none")  # legacy "good", history 5, dictionary, profile
FLEXIBLE = PasswordPolicy(
    14,
    0,
    required_kinds=("lowercase", "uppercase", "number"),
    max_repeats=2,
    max_sequential=2,
    flexible=True,
    max_length_exceeded="error",
    custom_words=("acme-rocket-2026",),
    patch_enforces="none",
)


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    policy = getattr(request, "param", LAX)
    app = create_emulator(domain="acme.eu.auth0.com", users=USERS, policy=policy)
    with serve_in_thread(app) as url:
        yield app, url


@pytest.fixture
async def stack(
    service: Callable[[str], Any], emulator: tuple[Any, str], clock: Clock
) -> AsyncIterator[Stack]:
    async with service(emulator[1]) as (client, runtime, smtp):
        yield Stack(client, runtime, emulator[1], smtp, clock)


def rules(answer: httpx.Response) -> list[dict[str, Any]]:
    """The requirements of a 422, without their sentences."""
    return [{k: v for k, v in r.items() if k != "message"} for r in answer.json()["requirements"]]


async def test_a_weak_password_is_refused_here_with_every_requirement_missed(
    stack: Stack,
) -> None:
    ticket = await request_ticket(stack)
    answer = await stack.send("password_reset.confirm", ticket=ticket, new_password="short")
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "password_rejected" and body["rule"] == "strength"
    assert rules(answer) == [
        {"rule": "min_length", "min": 8},
        {"rule": "character_types", "min": 3},
    ]
    assert body["requirements"][0]["message"] == "At least 8 characters"
    assert stack.password_patches() == []  # Auth0 was never asked
    # The emulator (enforcing nothing) would have taken it: the check here is the guard.
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert (done.status_code, done.json()) == (200, {"status": "completed"})
    assert len(stack.password_patches()) == 1


async def test_the_address_and_the_72_byte_rule(stack: Stack) -> None:
    ticket = await request_ticket(stack)
    personal = await stack.send(
        "password_reset.confirm", ticket=ticket, new_password="Jane-Secret-99"
    )
    assert (personal.status_code, personal.json()["rule"]) == (422, "user_info")
    assert rules(personal) == [{"rule": "user_info"}]
    too_long = "Corr3ct-Horse-Battery-" * 4  # 88 bytes: Auth0 would keep the first 72
    answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=too_long)
    assert answer.status_code == 422
    assert rules(answer) == [{"rule": "max_length", "max_bytes": 72}]
    umlauts = "Ä" * 35 + "Ab1-"  # 39 characters, 74 bytes
    answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=umlauts)
    assert rules(answer) == [{"rule": "max_length", "max_bytes": 72}]
    assert stack.password_patches() == []


async def test_local_refusals_spend_no_attempt(stack: Stack) -> None:
    ticket = await request_ticket(stack)
    for _ in range(12):  # more than the ten attempts a link allows
        answer = await stack.send("password_reset.confirm", ticket=ticket, new_password="weak")
        assert answer.status_code == 422
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert done.status_code == 200


async def test_verify_lists_the_policy_in_the_readers_language(stack: Stack) -> None:
    answer = await stack.send("password_reset.requested", email=JANE, locale="de")
    assert answer.status_code == 202
    await stack.drain()
    ticket = stack.ticket_from_last_mail()
    verify = (await stack.send("password_reset.verify", ticket=ticket)).json()
    assert verify["valid"] is True
    listed = verify["policy"]["requirements"]
    assert [{k: v for k, v in r.items() if k != "message"} for r in listed] == [
        {"rule": "min_length", "min": 8},
        {"rule": "character_types", "min": 3},
        {"rule": "max_length", "max_bytes": 72},
        {"rule": "dictionary"},
        {"rule": "user_info"},
        {"rule": "history", "size": 5},
    ]
    assert listed[0]["message"] == "Mindestens 8 Zeichen"
    refused = await stack.send("password_reset.confirm", ticket=ticket, new_password="kurz")
    assert refused.json()["message"] == "Dieses Passwort erfüllt nicht alle Passwortanforderungen."
    assert refused.json()["requirements"][0]["message"] == "Mindestens 8 Zeichen"


async def test_the_policy_is_read_once_and_cached(stack: Stack) -> None:
    ticket = await request_ticket(stack)
    for _ in range(3):
        await stack.send("password_reset.verify", ticket=ticket)
        await stack.send("password_reset.confirm", ticket=ticket, new_password="weak")
    reads = stack.calls("GET", "/api/v2/connections")
    assert len(reads) == 1
    assert "name=Username-Password-Authentication" in reads[0]["query"]
    assert "strategy=auth0" in reads[0]["query"]


@pytest.mark.parametrize("emulator", [FLEXIBLE], indirect=True)
async def test_the_flexible_policy(stack: Stack) -> None:
    ticket = await request_ticket(stack)
    answer = await stack.send("password_reset.confirm", ticket=ticket, new_password="aaabcd-E")
    assert answer.status_code == 422
    assert rules(answer) == [
        {"rule": "min_length", "min": 14},
        {"rule": "number"},
        {"rule": "identical_characters", "max": 2},
        {"rule": "sequential_characters", "max": 2},
    ]
    custom = await stack.send(
        "password_reset.confirm", ticket=ticket, new_password="Acme-Rocket-2026"
    )
    assert rules(custom) == [{"rule": "dictionary"}]
    assert stack.password_patches() == []
    done = await stack.send(
        "password_reset.confirm", ticket=ticket, new_password="Qwzx-Plmk-7392-Vb"
    )
    assert done.status_code == 200


async def test_without_the_options_scope_auth0_judges_and_it_is_logged(
    stack: Stack, emulator: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    directory(emulator[0]).grant(
        [s for s in directory(emulator[0]).scopes if s != "read:connections_options"]
    )
    ticket = await request_ticket(stack)
    verify = (await stack.send("password_reset.verify", ticket=ticket)).json()
    # Only the rule that needs no policy: the 72-byte limit.
    assert verify["policy"]["requirements"] == [
        {"rule": "max_length", "max_bytes": 72, "message": "At most 72 bytes "
         "(accented and non-Latin characters take 2 to 4)"}
    ]  # fmt: skip
    assert any("read:connections_options" in r.getMessage() for r in caplog.records)
    # The emulator enforces nothing on PATCH: a weak password now gets through. This is
    # why `resetrelay check` and the docs name the scope.
    done = await stack.send("password_reset.confirm", ticket=ticket, new_password="weak")
    assert done.status_code == 200


STRICT = PasswordPolicy(patch_enforces="all")


@pytest.mark.parametrize("emulator", [STRICT], indirect=True)
async def test_auth0s_refusals_still_count_and_name_their_rule(stack: Stack) -> None:
    ticket = await request_ticket(stack)
    for _ in range(10):
        # Meets everything checkable here; Auth0 alone knows it is the current password.
        answer = await stack.send(
            "password_reset.confirm", ticket=ticket, new_password="Old-Passw0rd!"
        )
        assert answer.status_code == 422
        assert answer.json()["rule"] == "history"
        assert rules(answer) == [{"rule": "history", "size": 5}]
        assert answer.json()["requirements"][0]["message"] == "Not one of your last 5 passwords"
    final = await stack.send("password_reset.confirm", ticket=ticket, new_password=STRONG)
    assert final.status_code == 410 and final.json()["reason"] == "revoked"


async def test_a_refused_password_is_never_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    quiet_libraries()  # what `logs.configure()` does in every process
    caplog.set_level(logging.DEBUG)
    ticket = await request_ticket(stack)
    refused = "Tiny9!"
    answer = await stack.send("password_reset.confirm", ticket=ticket, new_password=refused)
    assert answer.status_code == 422
    (logged,) = [r for r in caplog.records if "local policy check" in r.getMessage()]
    assert logged.fields == {"rules": ["min_length"]}  # type: ignore[attr-defined]
    for record in caplog.records:
        assert refused not in record.getMessage(), record.name
        assert refused not in str(getattr(record, "fields", "")), record.name
