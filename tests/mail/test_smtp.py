"""SmtpMailer against real aiosmtpd servers on loopback: delivery, faults, TLS, AUTH."""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from typing import Any

import html5lib
import pytest

from mail.message import build_message
from mail.render import MailRenderer
from mail.smtp import (
    PermanentMailError,
    SmtpMailer,
    SmtpTarget,
    TlsMode,
    TransientMailError,
    parse_smtp_url,
)
from tests.mail.servers import (
    HOST,
    Credentials,
    DroppingAtData,
    DroppingAtMail,
    Recorder,
    RefusingRecipients,
    StartServer,
    free_port,
)

LINK = "https://www.example.com/account/reset?ticket=T0k3n-abc_DEF&lang=x"
RECIPIENT = "jane@example.com"


def reset_message(renderer: MailRenderer, locale: str | None = "en", n: int = 1) -> Message:
    mail = renderer.render(
        "reset", locale, {"link": LINK, "expires_minutes": 60, "email": RECIPIENT}
    )
    return build_message(
        mail,
        to=f"Jane <{RECIPIENT}>",
        sender="Acme Travel <no-reply@acme.example>",
        message_id=f"<reset-{n}@acme.example>",
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- SMTP_URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", SmtpTarget("mail.example.com", 25, TlsMode.OPPORTUNISTIC)),
        ("smtp://mail.example.com:587", SmtpTarget("mail.example.com", 587, TlsMode.OPPORTUNISTIC)),
        ("smtp+starttls://mail.example.com", SmtpTarget("mail.example.com", 587, TlsMode.STARTTLS)),
        ("smtps://mail.example.com", SmtpTarget("mail.example.com", 465, TlsMode.IMPLICIT)),
        ("SMTPS://Mail.Example.com:2465/", SmtpTarget("mail.example.com", 2465, TlsMode.IMPLICIT)),
        ("smtp://[::1]:2525", SmtpTarget("::1", 2525, TlsMode.OPPORTUNISTIC)),
    ],
)
def test_parse_smtp_url_schemes_and_default_ports(url: str, expected: SmtpTarget) -> None:
    assert parse_smtp_url(url) == expected


def test_parse_smtp_url_percent_decodes_credentials_and_hides_the_password() -> None:
    target = parse_smtp_url("smtp://apikey%40acme:p%40ss%3Aw%2Frd%20x@smtp.example.com:587")
    assert target.username == "apikey@acme"
    assert target.password == "p@ss:w/rd x"
    assert "p@ss" not in repr(target)
    assert "w/rd" not in repr(target)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2@mail.example.com",
        "smtp://user:hunter2@",
        "smtp://user:hunter2@mail.example.com:99999",
        "smtp://user:hunter2@mail.example.com/inbox",
        "smtp://user:hunter2@mail.example.com?tls=1",
        "mail.example.com:25",
    ],
)
def test_parse_smtp_url_rejects_without_echoing_the_secret(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL") as caught:
        parse_smtp_url(url)
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None


# -- delivery ---------------------------------------------------------------------------

EXPECTED = {
    # locale asked: (Content-Language, subject, a sentence of the text part, duration)
    "en": ("en", "Reset your Acme Travel password", "Open this link", "1 hour"),
    "de": (
        "de",
        "Setzen Sie Ihr Passwort für Acme Travel zurück",
        "Öffnen Sie diesen Link",
        "1 Stunde",
    ),
    "fr": ("fr", "Réinitialisez votre mot de passe Acme Travel", "Ouvrez ce lien", "1 heure"),
    "es": ("es", "Restablece tu contraseña de Acme Travel", "Abre este enlace", "1 hora"),
    "pt-BR": ("pt-BR", "Redefina a senha da sua conta Acme Travel", "Abra este link", "1 hora"),
    "ja": ("ja", "Acme Travel のパスワードの再設定", "次のリンクを開いて", "1 時間"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("locale", list(EXPECTED))
async def test_delivers_a_branded_translated_mail(
    smtp_server: StartServer, renderer: MailRenderer, locale: str
) -> None:
    server = smtp_server()
    async with SmtpMailer(server.url()) as mailer:
        await mailer.send(reset_message(renderer, locale))

    [received] = server.handler.received
    assert received.rcpt_tos == [RECIPIENT]
    assert received.mail_from == "no-reply@acme.example"
    message = received.message()
    language, subject, sentence, duration = EXPECTED[locale]
    assert message["Subject"] == subject  # RFC 2047 round trip, UTF-8 included
    assert message["Content-Language"] == language
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Message-ID"] == "<reset-1@acme.example>"
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"

    text = text_part.get_content()
    assert LINK in text.splitlines()  # the link alone on its own line
    assert sentence in text
    assert duration in text.replace("\u00a0", " ")  # CLDR puts a no-break space in "1 heure"
    assert "Acme Travel" in text

    html = html_part.get_content()
    html5lib.HTMLParser(strict=True).parse(html)
    assert f'lang="{language}"' in html
    assert LINK.replace("&", "&amp;") in html
    assert "Acme Travel" in html
    assert re.search(r'style="[^"]*background-color: #0a7d5a', html)  # inlined brand colour


@pytest.mark.anyio
async def test_two_sends_share_one_connection(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server()
    async with SmtpMailer(server.url()) as mailer:
        await mailer.send(reset_message(renderer, n=1))
        await mailer.send(reset_message(renderer, n=2))
    assert len(server.handler.received) == 2
    assert server.handler.connections == 1
    assert server.handler.noops == 0  # not idle long: no NOOP round trip


@pytest.mark.anyio
async def test_concurrent_sends_use_at_most_pool_size_connections(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server()
    async with SmtpMailer(server.url(), pool_size=2) as mailer:
        await asyncio.gather(*(mailer.send(reset_message(renderer, n=n)) for n in range(6)))
    assert len(server.handler.received) == 6
    assert 1 <= server.handler.connections <= 2


@pytest.mark.anyio
async def test_server_down_is_transient() -> None:
    async with SmtpMailer(f"smtp://{HOST}:{free_port()}", timeout=2) as mailer:
        with pytest.raises(TransientMailError, match="connection failed") as caught:
            await mailer.send(EmailMessage())
    assert caught.value.code is None
    assert caught.value.__cause__ is not None


@pytest.mark.anyio
async def test_a_server_that_never_answers_times_out_as_transient(
    renderer: MailRenderer,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never sends a greeting
        writer.close()

    listener = await asyncio.start_server(silent, HOST, 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with SmtpMailer(f"smtp://{HOST}:{port}", timeout=0.3) as mailer:
            with pytest.raises(TransientMailError, match="timed out"):
                await mailer.send(reset_message(renderer))
    finally:
        listener.close()


@pytest.mark.anyio
async def test_451_is_transient_and_the_next_attempt_goes_through(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server(RefusingRecipients(reply="451 4.3.0 try again later", times=1))
    async with SmtpMailer(server.url()) as mailer:
        with pytest.raises(TransientMailError) as caught:
            await mailer.send(reset_message(renderer))
        assert caught.value.code == 451
        await mailer.send(reset_message(renderer))
    assert len(server.handler.received) == 1
    assert server.handler.connections == 1  # RSET kept the session usable


@pytest.mark.anyio
@pytest.mark.parametrize("code", ["421 4.7.0", "450 4.2.0", "452 4.2.2"])
async def test_4xx_on_rcpt_is_transient(
    smtp_server: StartServer, renderer: MailRenderer, code: str
) -> None:
    server = smtp_server(RefusingRecipients(reply=f"{code} not now", times=1))
    async with SmtpMailer(server.url()) as mailer:
        with pytest.raises(TransientMailError):
            await mailer.send(reset_message(renderer))
        await mailer.send(reset_message(renderer))  # 421 closed the session: reconnects
    assert len(server.handler.received) == 1


@pytest.mark.anyio
async def test_550_is_permanent_and_masks_the_address(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server(
        RefusingRecipients(reply=f"550 5.1.1 <{RECIPIENT}>: user unknown", times=99)
    )
    async with SmtpMailer(server.url()) as mailer:
        with pytest.raises(PermanentMailError) as caught:
            await mailer.send(reset_message(renderer))
    assert caught.value.code == 550
    assert "recipient refused: 550" in caught.value.reason
    assert RECIPIENT not in str(caught.value)
    assert "***@example.com" in str(caught.value)
    assert server.handler.received == []


@pytest.mark.anyio
async def test_idle_timeout_of_the_server_means_a_new_connection(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server(timeout=0.2)  # aiosmtpd hangs up on sessions idle this long
    async with SmtpMailer(server.url()) as mailer:
        await mailer.send(reset_message(renderer, n=1))
        await asyncio.sleep(0.6)
        await mailer.send(reset_message(renderer, n=2))
    assert len(server.handler.received) == 2
    assert server.handler.connections == 2


@pytest.mark.anyio
async def test_a_drop_not_yet_noticed_is_retried_once_on_a_fresh_connection(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server(DroppingAtMail())
    async with SmtpMailer(server.url()) as mailer:
        await mailer.send(reset_message(renderer, n=1))
        await mailer.send(reset_message(renderer, n=2))  # first try hits the hang-up
    subjects = [item.message()["Message-ID"] for item in server.handler.received]
    assert subjects == ["<reset-1@acme.example>", "<reset-2@acme.example>"]
    assert server.handler.connections == 2


@pytest.mark.anyio
async def test_a_drop_on_a_fresh_connection_is_transient(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server(DroppingAtData())
    async with SmtpMailer(server.url()) as mailer:
        with pytest.raises(TransientMailError):
            await mailer.send(reset_message(renderer, n=1))
        await mailer.send(reset_message(renderer, n=2))
    assert [i.message()["Message-ID"] for i in server.handler.received] == [
        "<reset-2@acme.example>"
    ]


@pytest.mark.anyio
async def test_noop_only_after_a_long_idle_and_a_dead_answer_replaces_the_connection(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server()
    clock = FakeClock()
    async with SmtpMailer(server.url(), idle_check_after=30, clock=clock) as mailer:
        await mailer.send(reset_message(renderer, n=1))
        clock.now += 10
        await mailer.send(reset_message(renderer, n=2))
        assert server.handler.noops == 0
        clock.now += 31
        await mailer.send(reset_message(renderer, n=3))
        assert server.handler.noops == 1
        assert server.handler.connections == 1

        server.handler.noop_reply = "421 4.4.2 idle too long"
        clock.now += 31
        await mailer.send(reset_message(renderer, n=4))
    assert len(server.handler.received) == 4
    assert server.handler.connections == 2


@pytest.mark.anyio
async def test_aclose_says_quit_and_refuses_further_sends(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server()
    mailer = SmtpMailer(server.url())
    await mailer.send(reset_message(renderer))
    await mailer.aclose()
    await mailer.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await mailer.send(reset_message(renderer))


# -- TLS and AUTH -----------------------------------------------------------------------

USER, PASSWORD = "relay@acme", "s3cret:p@ss/word"
USERINFO = "relay%40acme:s3cret%3Ap%40ss%2Fword"


@pytest.fixture
async def tls_mailers() -> AsyncIterator[list[SmtpMailer]]:
    mailers: list[SmtpMailer] = []
    yield mailers
    for mailer in mailers:
        await mailer.aclose()


@pytest.mark.anyio
async def test_required_starttls_with_auth(
    smtp_server: StartServer,
    renderer: MailRenderer,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    credentials = Credentials(USER, PASSWORD)
    server = smtp_server(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=credentials,
        auth_required=True,  # AUTH is only offered after STARTTLS (auth_require_tls)
    )
    url = server.url("smtp+starttls", USERINFO)
    async with SmtpMailer(url, tls_context=client_tls) as mailer:
        await mailer.send(reset_message(renderer))
    [received] = server.handler.received
    assert received.tls
    assert received.login == USER
    assert credentials.attempts
    assert all(over_tls for *_, over_tls in credentials.attempts)


@pytest.mark.anyio
async def test_opportunistic_starttls_upgrades_when_offered(
    smtp_server: StartServer,
    renderer: MailRenderer,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    server = smtp_server(tls_context=server_tls)
    async with SmtpMailer(server.url("smtp"), tls_context=client_tls) as mailer:
        await mailer.send(reset_message(renderer))
    assert [item.tls for item in server.handler.received] == [True]


@pytest.mark.anyio
async def test_opportunistic_starttls_falls_back_to_plain_when_not_offered(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server()
    async with SmtpMailer(server.url("smtp")) as mailer:
        await mailer.send(reset_message(renderer))
    assert [item.tls for item in server.handler.received] == [False]


@pytest.mark.anyio
async def test_required_starttls_refuses_a_plaintext_server(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server()
    async with SmtpMailer(server.url("smtp+starttls")) as mailer:
        with pytest.raises(TransientMailError, match="STARTTLS"):
            await mailer.send(reset_message(renderer))
    assert server.handler.received == []


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_implicit_tls_with_auth(
    smtp_server: StartServer,
    renderer: MailRenderer,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    credentials = Credentials(USER, PASSWORD)
    server = smtp_server(
        ssl_context=server_tls,
        authenticator=credentials,
        auth_required=True,
        # aiosmtpd 1.4 cannot tell that the socket itself is TLS (aio-libs/aiosmtpd#281).
        auth_require_tls=False,
    )
    async with SmtpMailer(server.url("smtps", USERINFO), tls_context=client_tls) as mailer:
        await mailer.send(reset_message(renderer))
    [received] = server.handler.received
    assert received.login == USER
    assert credentials.attempts


@pytest.mark.anyio
async def test_an_untrusted_certificate_is_transient(
    smtp_server: StartServer, renderer: MailRenderer, server_tls: ssl.SSLContext
) -> None:
    server = smtp_server(ssl_context=server_tls)
    async with SmtpMailer(server.url("smtps")) as mailer:  # system trust store only
        with pytest.raises(TransientMailError):
            await mailer.send(reset_message(renderer))
    assert server.handler.received == []


@pytest.mark.anyio
async def test_a_wrong_password_is_transient_and_never_shown(
    smtp_server: StartServer,
    renderer: MailRenderer,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    server = smtp_server(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=Credentials(USER, PASSWORD),
        auth_required=True,
    )
    wrong = "Wr0ng-hunter2"
    mailer = SmtpMailer(
        server.url("smtp+starttls", f"relay%40acme:{wrong}"), tls_context=client_tls
    )
    async with mailer:
        with pytest.raises(TransientMailError) as caught:
            await mailer.send(reset_message(renderer))
    assert caught.value.code == 535
    for shown in (str(caught.value), repr(caught.value), repr(mailer)):
        assert wrong not in shown
    assert server.handler.received == []


@dataclass
class SlowAtData(Recorder):
    """Takes `delay` seconds to accept each message."""

    delay: float = 0.5

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.anyio
async def test_a_send_that_cannot_start_in_time_is_transient_and_not_sent(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server(SlowAtData())
    async with SmtpMailer(server.url(), pool_size=1) as mailer:
        first = asyncio.create_task(mailer.send(reset_message(renderer, n=1)))
        await asyncio.sleep(0.1)  # the only connection is busy with the first
        with pytest.raises(TransientMailError, match="not sent"):
            await mailer.send(reset_message(renderer, n=2), start_within=0.05)
        await first
        await mailer.send(reset_message(renderer, n=3), start_within=5)
    ids = [r.message()["Message-ID"] for r in server.handler.received]
    assert ids == ["<reset-1@acme.example>", "<reset-3@acme.example>"]


@dataclass
class HeldAtData(Recorder):
    """Accepts each message once `release` is set, and counts the DATAs held. aiosmtpd
    runs in a thread with an event loop of its own, hence a threading.Event."""

    release: threading.Event = field(default_factory=threading.Event)
    held: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.held += 1
        while not self.release.is_set():
            await asyncio.sleep(0.005)
        self.held -= 1
        return await super().handle_DATA(server, session, envelope)


async def held(handler: HeldAtData, n: int) -> None:
    async with asyncio.timeout(5):
        while handler.held < n:
            await asyncio.sleep(0.005)


@pytest.mark.anyio
async def test_senders_that_gave_up_waiting_leave_the_pool_whole(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    handler = HeldAtData()
    server = smtp_server(handler)
    async with SmtpMailer(server.url(), pool_size=2) as mailer:
        busy = [asyncio.create_task(mailer.send(reset_message(renderer, n=n))) for n in (1, 2)]
        await held(handler, 2)
        for n in (3, 4, 5):
            with pytest.raises(TransientMailError, match="not sent"):
                await mailer.send(reset_message(renderer, n=n), start_within=0.01)
        handler.release.set()
        await asyncio.gather(*busy)
        # Both slots came back: two sends run at once again, on the two connections.
        handler.release.clear()
        again = [asyncio.create_task(mailer.send(reset_message(renderer, n=n))) for n in (6, 7)]
        await held(handler, 2)
        handler.release.set()
        await asyncio.gather(*again)
    ids = sorted(item.message()["Message-ID"] for item in handler.received)
    assert ids == [f"<reset-{n}@acme.example>" for n in (1, 2, 6, 7)]
    assert handler.connections == 2


@pytest.mark.anyio
async def test_a_send_waits_up_to_start_within_for_a_connection(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    handler = HeldAtData()
    server = smtp_server(handler)
    async with SmtpMailer(server.url(), pool_size=1) as mailer:
        first = asyncio.create_task(mailer.send(reset_message(renderer, n=1)))
        await held(handler, 1)
        second = asyncio.create_task(mailer.send(reset_message(renderer, n=2), start_within=5))
        await asyncio.sleep(0.05)
        handler.release.set()  # the connection frees up well within the five seconds
        await asyncio.gather(first, second)
    assert len(handler.received) == 2
    assert handler.connections == 1


@pytest.mark.anyio
async def test_start_within_zero_still_sends_on_a_free_connection(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server()
    async with SmtpMailer(server.url()) as mailer:
        await mailer.send(reset_message(renderer, n=1), start_within=0)
        await mailer.send(reset_message(renderer, n=2), start_within=0)  # the idle connection
    assert len(server.handler.received) == 2


def international_message(renderer: MailRenderer) -> Message:
    mail = renderer.render("reset", "de", {"link": LINK, "expires_minutes": 60, "email": RECIPIENT})
    return build_message(
        mail,
        to="Jöran <jöran@example.com>",
        sender="Acme Travel <no-reply@acme.example>",
        message_id="<intl-1@acme.example>",
    )


@pytest.mark.anyio
async def test_an_international_address_goes_out_with_smtputf8(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server(enable_SMTPUTF8=True)  # aiosmtpd's default, said out loud
    async with SmtpMailer(server.url()) as mailer:
        await mailer.send(international_message(renderer))
    [received] = server.handler.received
    assert received.rcpt_tos == ["jöran@example.com"]
    assert "To: Jöran <jöran@example.com>\r\n".encode() in received.data


@pytest.mark.anyio
async def test_an_international_address_without_smtputf8_is_permanent(
    smtp_server: StartServer, renderer: MailRenderer
) -> None:
    server = smtp_server(enable_SMTPUTF8=False)
    async with SmtpMailer(server.url()) as mailer:
        with pytest.raises(PermanentMailError, match="cannot carry"):
            await mailer.send(international_message(renderer))
    assert server.handler.received == []
