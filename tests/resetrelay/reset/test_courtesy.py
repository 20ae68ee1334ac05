"""Courtesy mails (COURTESY_MAILS): who hears what, through the real path.

The flow tests drive the service in-process through signed `/hooks/website`
events; the Auth0 emulator runs on uvicorn (real HTTP) with social-only users,
and mail goes to aiosmtpd on loopback. The rules underneath (which kind, which
provider names, which inbox, which junk) are tested on their own first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import text

from devkit.emulator import create_emulator
from identity.users import Auth0User
from resetrelay.logs import quiet_libraries
from resetrelay.reset.courtesy import KINDS, kind_for, mailbox, provider_names, undeliverable
from tests.conftest import Clock
from tests.resetrelay.reset.test_flow import Stack
from tests.support import serve_in_thread

pytestmark = pytest.mark.anyio

JANE = "jane@example.com"  # a database user: the reset mail, whatever the mode
SAM = "sam@example.com"  # social-only, Google, French
ALEX = "alex@example.com"  # two unlinked social users: GitHub and Apple
PAT = "pat@example.com"  # social-only through a provider we have no name for
OPS = "ops@example.com"  # a password, in another database connection
NEW = "newcomer@acme-travel.net"  # no account anywhere
JUNK = "nobody@example.com"  # no account, and a domain that takes no mail
SIGNIN = "https://www.example.com/signin"
USERS = [
    {"email": JANE, "password": "Old-Passw0rd!", "user_id": "auth0|jane"},
    {"email": SAM, "social": "google-oauth2", "user_id": "google-oauth2|sam", "locale": "fr"},
    {"email": ALEX, "social": "github", "user_id": "github|alex"},
    {"email": ALEX, "social": "apple", "user_id": "apple|alex"},
    {"email": PAT, "social": "oauth2", "user_id": "oauth2|corp|pat"},
    {"email": OPS, "password": "Ops-Passw0rd!", "connection": "Staff-Database"},
]
ASKED = (JANE, SAM, ALEX, PAT, OPS, NEW, JUNK)
# What each mode mails (recipient -> template); everyone else hears nothing.
EXPECTED = {
    "none": {JANE: "reset"},
    "social": {JANE: "reset", SAM: "social", ALEX: "social", PAT: "social"},
    "all": {JANE: "reset", SAM: "social", ALEX: "social", PAT: "social", NEW: "unknown"},
}


# -- the rules ---------------------------------------------------------------------------


def user(*providers: str) -> Auth0User:
    identities = [
        {"provider": p, "connection": "Staff" if p == "auth0" else p, "isSocial": p != "auth0"}
        for p in providers
    ]
    return Auth0User.from_json({"user_id": "x|1", "identities": identities}, "Ours")


@pytest.mark.parametrize(
    ("mode", "users", "kind"),
    [
        ("none", [user("google-oauth2")], None),
        ("none", [], None),
        ("social", [user("google-oauth2")], "social"),
        ("social", [user("github"), user("apple")], "social"),
        ("social", [], None),
        ("all", [], "unknown"),
        ("all", [user("samlp")], "social"),
        # A password somewhere: neither "no password here" nor "no account" is true.
        ("all", [user("google-oauth2", "auth0")], None),
        ("all", [user("github"), user("auth0")], None),
        ("all", [user()], None),  # no identity to speak of
    ],
)
def test_which_courtesy_mail(mode: str, users: list[Auth0User], kind: str | None) -> None:
    assert kind_for(mode, users) == kind


def test_provider_names_are_known_ones_each_once_in_order() -> None:
    users = [user("windowslive", "google-oauth2"), user("google-oauth2", "samlp", "linkedin")]
    assert provider_names(users) == ["Microsoft", "Google", "LinkedIn"]
    assert provider_names([user("facebook"), user("github"), user("apple")]) == [
        "Facebook",
        "GitHub",
        "Apple",
    ]
    assert provider_names([user("samlp"), user("email")]) == []  # the neutral wording


@pytest.mark.parametrize(
    "address",
    [
        "nobody@example.com",
        "a@mail.example.org",
        "a@example.net",
        "a@shop.example",
        "no-reply@acme-travel.net",
        "NoReply+x@acme-travel.net",
        "mailer-daemon@acme-travel.net",
        "do-not-reply@acme-travel.net",
        "Hello@Acme.Example",  # our own sender (MAIL_FROM), in any case
    ],
)
def test_undeliverable_addresses(address: str) -> None:
    assert undeliverable(address, "Acme <hello@acme.example>")


@pytest.mark.parametrize(
    "address",
    ["newcomer@acme-travel.net", "reply@acme-travel.net", "a@example.com.au", "a@myexample.com"],
)
def test_ordinary_addresses_are_not_junk(address: str) -> None:
    assert not undeliverable(address, "Acme <hello@acme.example>")


@pytest.mark.parametrize(
    "variant",
    [
        "jane@gmail.com",
        "Jane@Gmail.com",
        "j.a.n.e@gmail.com",
        "jane+news@gmail.com",
        "jane-news@gmail.com",
        "jane=news@gmail.com",
        "jane@googlemail.com",
        "jane@gmail.com.",
        "\uff4a\uff41\uff4e\uff45@gmail.com",  # fullwidth "jane" folds to ASCII (NFKC)
    ],
)
def test_one_inbox_under_many_spellings(variant: str) -> None:
    assert mailbox(variant) == "jane@gmail.com"


def test_mailbox_keeps_what_tells_inboxes_apart() -> None:
    assert mailbox("jane@bücher.de") == "jane@xn--bcher-kva.de"
    assert mailbox("+x@acme.net") == "+x@acme.net"  # nothing before the cut: kept whole
    assert len({mailbox(a) for a in ("jane@a.net", "john@a.net", "jane@b.net")}) == 3


# -- the flow ----------------------------------------------------------------------------


@pytest.fixture
def emulator_url() -> Iterator[str]:
    with serve_in_thread(create_emulator(domain="acme.eu.auth0.com", users=USERS)) as url:
        yield url


@pytest.fixture
def courtesy_stack(
    service: Callable[..., Any], emulator_url: str, clock: Clock
) -> Callable[..., Any]:
    """`async with courtesy_stack(**env) as stack`: the service over the emulator above."""

    @asynccontextmanager
    async def start(**env: str) -> AsyncIterator[Stack]:
        async with service(emulator_url, **env) as (client, runtime, smtp):
            yield Stack(client, runtime, emulator_url, smtp, clock)

    return start


def by_recipient(stack: Stack) -> dict[str, EmailMessage]:
    mails = stack.mails()
    found = {m["To"]: m for m in mails}
    assert len(found) == len(mails), "one mail per recipient"
    return found


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(mail: EmailMessage) -> str:
    part = mail.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def answer_shape(answer: Any) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    headers = tuple(sorted((k, v) for k, v in answer.headers.items() if k != "x-request-id"))
    return answer.status_code, answer.content, headers


async def metric(stack: Stack, name: str, **labels: str) -> float:
    """The sum of one metric's samples whose labels include `labels` (0 for none)."""
    body = (await stack.client.get("/metrics")).text
    total = 0.0
    for text_labels, value in re.findall(rf"^{name}{{(.*)}} (\S+)$", body, flags=re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', text_labels))
        if labels.items() <= found.items():
            total += float(value)
    return total


async def outbox(stack: Stack) -> list[tuple[str, str, str, str | None]]:
    """Every outbox row: recipient, template, state, ticket id."""
    async with stack.runtime.db.read() as conn:
        rows = await conn.execute(
            text("SELECT recipient, template, status, ticket_id FROM mail_messages")
        )
        return sorted((r.recipient, r.template, r.status, r.ticket_id) for r in rows)


@pytest.mark.parametrize("mode", ["none", "social", "all"])
async def test_each_mode_mails_whom_it_says_and_answers_everyone_alike(
    courtesy_stack: Callable[..., Any], mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    quiet_libraries()  # what `logs.configure()` does in every process
    caplog.set_level(logging.DEBUG)
    async with courtesy_stack(COURTESY_MAILS=mode, SIGNIN_URL=SIGNIN) as stack:
        answers = [
            answer_shape(await stack.send("password_reset.requested", email=address))
            for address in ASKED
        ]
        # One answer, byte for byte, for every address in every mode: the job decides.
        assert set(answers) == {
            (
                202,
                b'{"status":"accepted"}',
                (("content-length", "21"), ("content-type", "application/json")),
            )
        }
        # Nothing was looked up or sent before the answers: the decision is the job's.
        assert stack.mails() == [] and stack.calls("GET", "/users-by-email") == []
        await stack.drain()

        mails = by_recipient(stack)
        templates = {row[0]: row[1] for row in await outbox(stack)}
        assert templates == EXPECTED[mode]
        assert set(mails) == set(EXPECTED[mode])
        assert "/account/reset?ticket=" in text_of(mails[JANE])  # database users reset
        courtesy = {a for a, t in EXPECTED[mode].items() if t != "reset"}
        for address in courtesy:
            # Durable like every mail, with no ticket and so no reset link: the one
            # link is the sign-in page's, from the settings.
            links = set(re.findall(r"https?://[^\s\"<>]+", text_of(mails[address])))
            assert links == {SIGNIN}
            hrefs = set(re.findall(r'href="(https?://[^"]+)"', html_of(mails[address])))
            assert hrefs == {SIGNIN}
        rows = await outbox(stack)
        assert all(ticket is None for to, _, _, ticket in rows if to in courtesy)
        assert {status for _, _, status, _ in rows} == {"sent"}

        if mode != "none":
            sam = mails[SAM]  # Auth0 says French: the mail is French, naming Google
            assert sam["Content-Language"] == "fr"
            assert "Vous vous connectez à Acme avec Google" in text_of(sam)
            assert "GitHub or Apple" in text_of(mails[ALEX])
            assert "through another service" in text_of(mails[PAT])
            assert "Google" not in text_of(mails[PAT])
        if mode == "all":
            new = text_of(mails[NEW])
            assert "there is no Acme account with this address" in new
            assert "someone entered this address" in new
            # Nothing about any account, anywhere: no provider, no "your account".
            assert not re.search(r"Google|GitHub|Apple|your Acme account", new)

        courtesy_mails = "resetrelay_courtesy_mails_total"
        for kind in KINDS:
            sent = sum(t == kind for t in EXPECTED[mode].values())
            assert await metric(stack, courtesy_mails, kind=kind, outcome="queued") == sent
        assert await metric(stack, courtesy_mails, outcome="throttled") == 0
        # The junk address was decided against, and counted.
        junk = await metric(stack, courtesy_mails, kind="unknown", outcome="undeliverable")
        assert junk == (1 if mode == "all" else 0)
        # The funnel counts the lookups as ever; `mailed` only mails with a reset link.
        funnel = "resetrelay_funnel_steps_total"
        assert await metric(stack, funnel, step="mailed") == 1
        assert await metric(stack, funnel, step="social") == 4  # OPS too: no user of ours
        assert await metric(stack, funnel, step="unknown") == 2

    logged = "\n".join(
        r.getMessage() + repr(getattr(r, "fields", ""))
        for r in caplog.records
        if r.levelno >= logging.getLogger(r.name).getEffectiveLevel()
        and not r.name.startswith("mail.log")  # the test's own SMTP server's trace
    )
    for address in ASKED:
        assert address not in logged


async def test_throttled_per_inbox_under_any_spelling(
    courtesy_stack: Callable[..., Any],
) -> None:
    async with courtesy_stack(COURTESY_MAILS="all", RATE_LIMIT_PER_EMAIL="2/hour") as stack:
        # Five requests for one social address: the per-address limit, as for resets.
        for _ in range(5):
            await stack.send("password_reset.requested", email=SAM)
        # Six spellings of one unknown inbox, each its own address to the request
        # limit: the inbox's own count stops them at the same limit.
        spellings = ("newcomer", "new.comer", "newcomer+a", "newcomer+b", "NewComer+c", "n.ewcomer")
        for spelling in spellings:
            await stack.send("password_reset.requested", email=f"{spelling}@acme-travel.net")
        await stack.drain()
        recipients = [m["To"] for m in stack.mails()]
        assert recipients.count(SAM) == 2
        assert len([r for r in recipients if r.endswith("@acme-travel.net")]) == 2
        courtesy_mails = "resetrelay_courtesy_mails_total"
        assert await metric(stack, courtesy_mails, kind="unknown", outcome="throttled") == 4
        assert await metric(stack, courtesy_mails, kind="unknown", outcome="queued") == 2
        assert await metric(stack, courtesy_mails, kind="social", outcome="queued") == 2
        # SAM's last three, refused before any lookup, exactly as reset requests are.
        assert await metric(stack, "resetrelay_rate_limit_hits_total", scope="email") == 3

        # A database user's reset mails are not spent by anyone's courtesy mails.
        await stack.send("password_reset.requested", email=JANE)
        await stack.drain()
        assert [m["To"] for m in stack.mails()].count(JANE) == 1


async def test_the_request_locale_wins_and_no_link_without_signin_url(
    courtesy_stack: Callable[..., Any],
) -> None:
    async with courtesy_stack(COURTESY_MAILS="all") as stack:
        await stack.send("password_reset.requested", email=NEW, locale="ja")
        await stack.send("password_reset.requested", email=SAM, locale="pt-BR")
        await stack.drain()
        mails = by_recipient(stack)
        new, sam = mails[NEW], mails[SAM]
        assert (new["Content-Language"], sam["Content-Language"]) == ("ja", "pt-BR")
        assert "Acme アカウントは存在しない" in text_of(new)
        assert str(new["Subject"]) == "このアドレスの Acme アカウントはありません"
        assert "Você entra em Acme com Google" in text_of(sam)
        for mail in (new, sam):
            assert "https://" not in text_of(mail)
            assert "rr-button" not in html_of(mail)
