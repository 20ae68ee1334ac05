from __future__ import annotations

import subprocess
import sys

import pytest

from resetrelay.settings import RateLimit, Secret, Settings, SettingsError, normalise_database_url
from tests.conftest import SECRET_KEY, WEBHOOK_SECRET, make_env


def test_defaults_from_a_minimal_environment() -> None:
    s = Settings.from_env(make_env())
    assert s.port == 8000
    assert s.host == "127.0.0.1"
    assert s.webhook_tolerance_seconds == 300
    assert s.ticket_ttl_seconds == 3600
    assert s.rate_limit_per_email == RateLimit(3, 3600)
    assert s.rate_limit_per_ip == RateLimit(20, 3600)
    assert s.auth0_base_url == "https://acme.eu.auth0.com"
    assert s.auth0_connection == "Username-Password-Authentication"


def test_platform_port_binds_all_interfaces() -> None:
    s = Settings.from_env(make_env(PORT="5000"))
    assert (s.host, s.port) == ("0.0.0.0", 5000)


@pytest.mark.parametrize(
    "name", ["WEBHOOK_SECRET", "SECRET_KEY", "RESET_URL", "MAIL_FROM", "SMTP_URL", "AUTH0_DOMAIN"]
)
def test_missing_required_variable_is_named(name: str) -> None:
    env = make_env()
    del env[name]
    with pytest.raises(SettingsError, match=f"^{name} is required"):
        Settings.from_env(env)


def test_demo_relaxes_what_the_demo_provides() -> None:
    env = make_env()
    for name in ("SECRET_KEY", "SMTP_URL", "AUTH0_DOMAIN"):
        del env[name]
    Settings.from_env(env, demo=True)


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("RESET_URL", "https://www.example.com/reset", "{ticket}"),
        ("RESET_URL", "javascript:alert(1)//{ticket}", "http"),
        ("WEBHOOK_SECRET", "whsec_!!!", "base64"),
        ("WEBHOOK_SECRET", "whsec_c2hvcnQ=", "shorter"),
        ("SECRET_KEY", "short", "32 bytes"),
        ("RATE_LIMIT_PER_EMAIL", "lots", "3/hour"),
        ("PORT", "http", "whole number"),
        ("REVOKE_SESSIONS", "maybe", "true or false"),
        ("BRAND_COLOR", "red;background:url(x)", "hex colour"),
        ("DATABASE_URL", "mysql://x/y", "not supported"),
        ("SMTP_URL", "http://mail", "smtp://"),
    ],
)
def test_malformed_values_are_named(name: str, value: str, match: str) -> None:
    with pytest.raises(SettingsError, match=name) as info:
        Settings.from_env(make_env(**{name: value}))
    assert match in str(info.value)


def test_rotation_reads_every_secret() -> None:
    s = Settings.from_env(
        make_env(WEBHOOK_SECRET=f"{WEBHOOK_SECRET} whsec_c2VjcmV0LXR3by1zZWNyZXQtdHdv")
    )
    assert len(s.webhook_secrets) == 2


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_database_urls_map_to_our_drivers(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected


def test_secrets_hide_from_repr() -> None:
    s = Settings.from_env(make_env(AUTH0_CLIENT_SECRET="m2m-very-secret"))
    text = repr(s)
    assert SECRET_KEY not in text
    assert "m2m-very-secret" not in text
    assert WEBHOOK_SECRET.removeprefix("whsec_") not in text
    assert str(Secret("x")) == "Secret('**********')"


def test_cli_exits_2_with_one_line_naming_the_variable() -> None:
    env = make_env()
    del env["WEBHOOK_SECRET"]
    result = subprocess.run(
        [sys.executable, "-m", "resetrelay", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "resetrelay: WEBHOOK_SECRET is required but not set"
