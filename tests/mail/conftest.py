"""Real SMTP servers on loopback (aiosmtpd) and a throwaway CA (trustme) for the mail tests."""

from __future__ import annotations

import ssl

import pytest
import trustme

from mail.render import Brand, MailRenderer
from tests.mail.servers import HOST


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    return context


@pytest.fixture
def brand() -> Brand:
    return Brand(
        name="Acme Travel",
        logo_url="",
        color="#0a7d5a",
        support_email="help@acme.example",
    )


@pytest.fixture
def renderer(brand: Brand) -> MailRenderer:
    return MailRenderer(brand)
