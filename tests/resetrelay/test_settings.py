from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from resetrelay.reference import markdown
from resetrelay.settings import (
    MAIL,
    PREVIEW,
    VARIABLES,
    WEB,
    WORKER,
    RateLimit,
    Secret,
    Settings,
    SettingsError,
    needs,
    normalise_database_url,
)
from tests.conftest import SECRET_KEY, WEBHOOK_SECRET, make_env

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_from_a_minimal_environment() -> None:
    s = Settings.from_env(make_env())
    assert s.port == 8000
    assert s.host == "127.0.0.1"
    assert s.webhook_tolerance_seconds == 300
    assert s.ticket_ttl_seconds == 3600
    assert s.dispute_url == "" and s.dispute_ttl_seconds == 7 * 24 * 3600
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
        ("DISPUTE_URL", "https://www.example.com/dispute?ticket={ticket}", "{token}"),
        ("DISPUTE_URL", "javascript:alert(1)//{token}", "http"),
        ("DISPUTE_TTL_SECONDS", "600", "3600"),
        ("DISPUTE_TTL_SECONDS", "a week", "whole number"),
        ("WEBHOOK_SECRET", "whsec_!!!", "base64"),
        ("WEBHOOK_SECRET", "whsec_c2hvcnQ=", "shorter"),
        ("SECRET_KEY", "short", "32 bytes"),
        ("RATE_LIMIT_PER_EMAIL", "lots", "3/hour"),
        ("PORT", "http", "whole number"),
        ("REVOKE_SESSIONS", "maybe", "auto, revoke_access, device_credentials, off"),
        ("BRAND_COLOR", "red;background:url(x)", "hex colour"),
        ("DATABASE_URL", "mysql://x/y", "not supported"),
        ("SMTP_URL", "http://mail", "smtp://"),
        ("PWNED_PASSWORDS_URL", "ftp://pwned.example", "http(s) URL"),
        ("PWNED_PASSWORDS_URL", "https://pwned.example/?k=v", "without query"),
        ("PWNED_PASSWORDS_ON_ERROR", "maybe", "allow or reject"),
        ("PWNED_PASSWORDS_TIMEOUT_SECONDS", "soon", "a number"),
        ("PWNED_PASSWORDS_TIMEOUT_SECONDS", "0", "at least 0.1"),
        ("PWNED_PASSWORDS_TIMEOUT_SECONDS", "60", "at most 30"),
        ("COURTESY_MAILS", "everyone", "none, social, all"),
        ("SIGNIN_URL", "/signin", "absolute http(s) URL"),
        ("SIGNIN_URL", "javascript:alert(1)", "absolute http(s) URL"),
        ("SIGNIN_URL", "https://user:pw@www.example.com/signin", "absolute http(s) URL"),
        ("SIGNIN_URL", "https://[::1/signin", "absolute http(s) URL"),
        ("SIGNIN_URL", 'https://www.example.com/"><script>', "absolute http(s) URL"),
    ],
)
def test_malformed_values_are_named(name: str, value: str, match: str) -> None:
    with pytest.raises(SettingsError, match=name) as info:
        Settings.from_env(make_env(**{name: value}))
    assert match in str(info.value)


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("", "auto"),
        ("auto", "auto"),
        ("revoke_access", "revoke_access"),
        ("Device_Credentials", "device_credentials"),
        ("off", "off"),
        ("true", "auto"),  # the older boolean values keep their meaning
        ("false", "off"),
    ],
)
def test_revoke_sessions_modes(value: str, mode: str) -> None:
    assert Settings.from_env(make_env(REVOKE_SESSIONS=value)).revoke_sessions == mode


def test_the_breach_check_defaults_to_the_public_api_and_empty_disables_it() -> None:
    unset = {k: v for k, v in make_env().items() if k != "PWNED_PASSWORDS_URL"}
    defaults = Settings.from_env(unset)
    assert defaults.pwned_passwords_url == "https://api.pwnedpasswords.com"
    assert defaults.pwned_passwords_on_error == "allow"
    assert defaults.pwned_passwords_timeout_seconds == 2.0
    for off in ("", "  ", "off", "OFF"):
        assert Settings.from_env(make_env(PWNED_PASSWORDS_URL=off)).pwned_passwords_url == ""
    own = Settings.from_env(
        make_env(
            PWNED_PASSWORDS_URL="https://pwned.internal.example/api/",
            PWNED_PASSWORDS_ON_ERROR="Reject",
            PWNED_PASSWORDS_TIMEOUT_SECONDS="0.5",
        )
    )
    assert own.pwned_passwords_url == "https://pwned.internal.example/api"
    assert own.pwned_passwords_on_error == "reject"
    assert own.pwned_passwords_timeout_seconds == 0.5


@pytest.mark.parametrize(
    ("value", "mode"), [("", "none"), ("none", "none"), ("Social", "social"), (" all ", "all")]
)
def test_courtesy_mail_modes(value: str, mode: str) -> None:
    settings = Settings.from_env(make_env(COURTESY_MAILS=value))
    assert settings.courtesy_mails == mode
    assert settings.signin_url == ""  # unset: the courtesy mails carry no link


def test_the_signin_url_is_kept_as_written() -> None:
    url = "https://www.example.com/signin?from=mail"
    assert Settings.from_env(make_env(SIGNIN_URL=url)).signin_url == url


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


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resetrelay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_exits_2_with_one_line_naming_the_variable() -> None:
    env = make_env()
    del env["WEBHOOK_SECRET"]
    result = _cli("serve", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == "resetrelay: WEBHOOK_SECRET is required but not set"


def test_every_problem_is_reported_at_once() -> None:
    env = make_env(PORT="http", BRAND_COLOR="red")
    for name in ("AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "BRAND_NAME"):
        del env[name]
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert sorted(info.value.problems) == [
        "AUTH0_CLIENT_ID is required but not set",
        "AUTH0_CLIENT_SECRET is required but not set",
        "BRAND_COLOR must be a hex colour such as #2f5bea",
        "BRAND_NAME is required but not set",
        "PORT must be a whole number, not 'http'",
    ]


def test_each_role_needs_only_what_it_uses() -> None:
    assert needs() == frozenset()
    assert needs(PREVIEW) == {"BRAND_NAME"}
    assert needs(MAIL) == {"BRAND_NAME", "MAIL_FROM", "SMTP_URL"}
    web = needs(WEB)
    assert "SMTP_URL" not in web and "BRAND_NAME" not in web and "RESET_URL" not in web
    assert {"AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "WEBHOOK_SECRET"} <= web
    # Jobs call Auth0: a worker without credentials would retry 401s forever.
    assert {"AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "SMTP_URL", "BRAND_NAME"} <= needs(WORKER)
    assert "WEBHOOK_SECRET" not in needs(WORKER)


def test_a_worker_that_sends_website_events_needs_the_signing_secret() -> None:
    env = make_env(WEBSITE_EVENTS_URL="https://www.example.com/hooks")
    del env["WEBHOOK_SECRET"]
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET is required"):
        Settings.from_env(env, roles=(WORKER,))
    del env["WEBSITE_EVENTS_URL"]
    Settings.from_env(env, roles=(WORKER,))


def test_migrate_needs_no_setting_but_the_database(tmp_path: Path) -> None:
    result = _cli("migrate", env={"DATABASE_URL": f"sqlite:///{tmp_path}/m.db", "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert _cli("preview", str(tmp_path / "p"), env={"BRAND_NAME": "Acme"}).returncode == 0
    missing = _cli("preview", str(tmp_path / "q"), env={})
    assert missing.stderr.strip() == "resetrelay: BRAND_NAME is required but not set"


def test_docs_settings_is_generated_from_the_code() -> None:
    # Regenerate with: python -m resetrelay.reference > docs/settings.md
    assert (ROOT / "docs" / "settings.md").read_text() == markdown()
    for variable in VARIABLES:
        assert f"`{variable.name}`" in markdown()


def test_config_lists_every_setting_masks_secrets_and_names_what_is_missing() -> None:
    env = make_env(AUTH0_CLIENT_SECRET="m2m-very-secret")
    del env["BRAND_NAME"]
    result = _cli("config", env=env)
    assert result.returncode == 2
    assert "m2m-very-secret" not in result.stdout and SECRET_KEY not in result.stdout
    assert "set (15 characters, hidden)" in result.stdout
    for variable in VARIABLES:
        assert variable.name in result.stdout
    assert "  BRAND_NAME is required but not set" in result.stdout
    env["BRAND_NAME"] = "Acme"
    assert _cli("config", env=env).returncode == 0
