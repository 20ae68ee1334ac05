"""MailCatcher: real SMTP in (smtplib on loopback), the web inbox and JSON API out."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage

import httpx
import pytest

from devkit.catcher import HTML_PART_CSP, MailCatcher

LINK = "https://www.example.com/account/reset?ticket=T0k3n-abc_DEF"


def reset_mail(to: str = "jane@example.com", subject: str = "Reset your password") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Acme <no-reply@acme.example>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Wed, 15 Jan 2025 09:30:00 +0000"
    message.set_content(f"Choose a new password:\n{LINK}\n")
    message.add_alternative(
        f'<html><head><title>x</title></head><body><p>Hi</p><a href="{LINK}">Reset</a>'
        "<script>alert(1)</script></body></html>",
        subtype="html",
    )
    return message


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    with MailCatcher(smtp_port=0) as running:
        yield running


@pytest.fixture
async def web(catcher: MailCatcher) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=catcher.web_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://catcher") as client:
        yield client


def send(catcher: MailCatcher, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=5) as smtp:
        smtp.send_message(message)


def test_port_zero_reports_the_real_port(catcher: MailCatcher) -> None:
    assert catcher.smtp_port > 0
    with socket.create_connection(("127.0.0.1", catcher.smtp_port), timeout=5) as conn:
        assert conn.recv(100).startswith(b"220 ")


def test_stop_releases_the_port_and_start_again_works() -> None:
    catcher = MailCatcher()
    catcher.start()
    with pytest.raises(RuntimeError):
        catcher.start()
    catcher.stop()
    catcher.stop()  # idempotent
    catcher.start()
    try:
        send(catcher, reset_mail())
        assert len(catcher.messages) == 1
    finally:
        catcher.stop()


def test_messages_are_parsed(catcher: MailCatcher) -> None:
    send(catcher, reset_mail())
    [message] = catcher.messages
    assert message.to == "jane@example.com"
    assert message.sender == "Acme <no-reply@acme.example>"
    assert message.mail_from == "no-reply@acme.example"
    assert message.rcpt_tos == ("jane@example.com",)
    assert message.subject == "Reset your password"
    assert LINK in message.text
    assert f'href="{LINK}"' in message.html
    assert message.links == (LINK,)
    assert b"Subject: Reset your password" in message.raw


def test_only_the_newest_are_kept() -> None:
    with MailCatcher(limit=3) as catcher:
        for n in range(5):
            send(catcher, reset_mail(subject=f"mail {n}"))
        assert [m.subject for m in catcher.messages] == ["mail 4", "mail 3", "mail 2"]


@pytest.mark.anyio
async def test_inbox_lists_newest_first(catcher: MailCatcher, web: httpx.AsyncClient) -> None:
    empty = await web.get("/")
    assert empty.status_code == 200
    assert "No mail yet" in empty.text
    send(catcher, reset_mail("first@example.com", "First <one>"))
    send(catcher, reset_mail("second@example.com", "Second"))
    page = await web.get("/")
    assert page.status_code == 200
    assert page.text.index("second@example.com") < page.text.index("first@example.com")
    assert "First &lt;one&gt;" in page.text  # escaped
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.anyio
async def test_detail_shows_headers_text_links_and_a_sandboxed_frame(
    catcher: MailCatcher, web: httpx.AsyncClient
) -> None:
    send(catcher, reset_mail())
    [message] = catcher.messages
    page = await web.get(f"/messages/{message.id}")
    assert page.status_code == 200
    assert "Reset your password" in page.text
    assert "no-reply@acme.example" in page.text
    assert "<pre>Choose a new password:" in page.text
    assert f'<a href="{LINK}" target="_blank" rel="noopener noreferrer">' in page.text
    frame = '<iframe sandbox="allow-popups allow-popups-to-escape-sandbox"'
    assert f'{frame} src="/messages/{message.id}/html"' in page.text
    assert "<script>alert(1)</script>" not in page.text  # the HTML part stays in its frame

    html = await web.get(f"/messages/{message.id}/html")
    assert html.status_code == 200
    assert html.headers["content-security-policy"] == HTML_PART_CSP
    assert html.headers["content-security-policy"].startswith("sandbox")
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert '<head><base target="_blank"><title>' in html.text

    raw = await web.get(f"/messages/{message.id}/raw")
    assert raw.content == message.raw


@pytest.mark.anyio
async def test_unknown_message_is_404(web: httpx.AsyncClient) -> None:
    assert (await web.get("/messages/999")).status_code == 404
    assert (await web.get("/messages/999/html")).status_code == 404
    assert (await web.get("/messages/999/raw")).status_code == 404


@pytest.mark.anyio
async def test_api_lists_and_clears(catcher: MailCatcher, web: httpx.AsyncClient) -> None:
    send(catcher, reset_mail("first@example.com"))
    send(catcher, reset_mail("second@example.com"))
    listed = await web.get("/api/messages")
    assert listed.status_code == 200
    assert listed.headers["content-type"] == "application/json"
    body = listed.json()
    assert [m["to"] for m in body] == ["second@example.com", "first@example.com"]
    first = body[0]
    assert set(first) >= {"id", "to", "from", "subject", "date", "text", "html"}
    assert first["from"] == "Acme <no-reply@acme.example>"
    assert first["subject"] == "Reset your password"
    assert first["date"] == "Wed, 15 Jan 2025 09:30:00 +0000"
    assert LINK in first["text"]
    assert LINK in first["html"]
    assert first["links"] == [LINK]

    cleared = await web.delete("/api/messages")
    assert cleared.status_code == 204
    assert (await web.get("/api/messages")).json() == []
    assert catcher.messages == []


@pytest.mark.anyio
async def test_clear_button(catcher: MailCatcher, web: httpx.AsyncClient) -> None:
    send(catcher, reset_mail())
    answer = await web.post("/clear")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    assert catcher.messages == []


def test_plain_text_only_and_unreadable_mail_are_kept(catcher: MailCatcher) -> None:
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=5) as smtp:
        smtp.sendmail(
            "a@example.com",
            ["b@example.com"],
            b"Subject: plain\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\n"
            b"see http://localhost/x\r\n",
        )
    [message] = catcher.messages
    assert message.subject == "plain"
    assert message.to == "b@example.com"  # no To header: the envelope recipient
    assert message.html == ""
    assert "see http://localhost/x" in message.text
    assert message.links == ("http://localhost/x",)


@pytest.mark.anyio
async def test_every_answer_carries_the_security_headers(
    catcher: MailCatcher, web: httpx.AsyncClient
) -> None:
    """Caught mails hold reset links (tickets): nothing is cached, nothing sends a
    Referer, and the mail's own HTML stays sandboxed and framable only by the inbox."""
    send(catcher, reset_mail())
    message_id = catcher.messages[0].id
    paths = ["/", f"/messages/{message_id}", "/messages/nope", f"/messages/{message_id}/html"]
    paths += [f"/messages/{message_id}/raw", "/messages/nope/html", "/messages/nope/raw"]
    for path in paths:
        answer = await web.get(path)
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["cache-control"] == "no-store", path
        assert answer.headers["referrer-policy"] == "no-referrer", path
        if answer.headers["content-type"].startswith("text/html"):
            csp = answer.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "base-uri 'none'" in csp, path
            assert "script-src" not in csp, path
    part = (await web.get(f"/messages/{message_id}/html")).headers["content-security-policy"]
    assert "sandbox" in part
    assert "frame-ancestors 'self'" in part
    assert "form-action 'none'" in part
