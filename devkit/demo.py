"""`resetrelay demo`: the whole product on one machine, no accounts.

Starts, in one process: the service (SQLite in a temporary folder), the Auth0
emulator with demo users, a mail catcher with a web inbox, the demo website,
and a local breach range API (`devkit.pwned`, so new passwords are checked
against known breaches with no internet); prints every URL and a curl example;
stops cleanly on Ctrl-C. All ports are configurable; everything binds to
127.0.0.1.
"""

from __future__ import annotations

import json
import secrets
import shlex
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio
import uvicorn

from resetrelay import logs
from resetrelay.settings import Settings
from resetrelay.webhooks import new_secret

HOST = "127.0.0.1"
# Passwords of the local range API's corpus that pass the demo tenant's policy.
BREACHED_EXAMPLES = ("Passw0rd!", "P@ssw0rd123", "Summer2024!")
USERS_FILE = Path(__file__).resolve().parent / "demo_users.json"


@dataclass(frozen=True)
class DemoPorts:
    service: int = 8000
    auth0: int = 8001
    inbox: int = 8025
    smtp: int = 1025
    website: int = 8080
    pwned: int = 8002


def demo_env(ports: DemoPorts, folder: Path, overrides: Mapping[str, str]) -> dict[str, str]:
    env = {
        "DATABASE_URL": f"sqlite:///{folder}/resetrelay-demo.db",
        "WEBHOOK_SECRET": new_secret(),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RESET_URL": f"http://{HOST}:{ports.website}/account/reset?ticket={{ticket}}",
        "DISPUTE_URL": f"http://{HOST}:{ports.website}/account/dispute?token={{token}}",
        "MAIL_FROM": "Acme Accounts <no-reply@acme.example>",
        "SMTP_URL": f"smtp://{HOST}:{ports.smtp}",
        "AUTH0_DOMAIN": "auth0.emulator.local",
        "AUTH0_BASE_URL": f"http://{HOST}:{ports.auth0}",
        "AUTH0_CLIENT_ID": "emulator-client",
        "AUTH0_CLIENT_SECRET": "emulator-secret",
        "AUTH0_LOG_STREAM_TOKEN": secrets.token_urlsafe(24),
        "AUTH0_ACTION_SECRET": secrets.token_urlsafe(32),
        # The local range API (devkit.pwned), never the public one: the demo needs no internet.
        "PWNED_PASSWORDS_URL": f"http://{HOST}:{ports.pwned}",
        # The demo shows the courtesy mail too: the social-only user is told how to sign in.
        "COURTESY_MAILS": "social",
        "SIGNIN_URL": f"http://{HOST}:{ports.website}/signin",
        "BRAND_NAME": "Acme",
        "BRAND_COLOR": "#4f46e5",
        "SUPPORT_EMAIL": "support@acme.example",
        "MAIL_RETRY_INITIAL_SECONDS": "2",
        "DEV_MODE": "true",
        "AUTO_MIGRATE": "true",
        "INLINE_WORKER": "true",
    }
    # Branding and limits may be set from the shell; the wiring above may not.
    for name, value in overrides.items():
        if name.startswith(
            ("BRAND_", "RATE_LIMIT_", "DEFAULT_LOCALE", "TICKET_TTL", "COURTESY_", "MAIL_CODES")
        ):
            env[name] = value
    return env


def banner(ports: DemoPorts, users: list[dict[str, str]], env: Mapping[str, str]) -> str:
    lines = [
        "",
        "resetrelay demo is running (Ctrl-C stops everything)",
        "",
        f"  demo website       http://{HOST}:{ports.website}/forgot",
        f"  mail inbox         http://{HOST}:{ports.inbox}/",
        f"  resetrelay         http://{HOST}:{ports.service}/healthz  (/metrics, /openapi.json,"
        " /preview/mail/reset)",
        f"  Auth0 emulator     http://{HOST}:{ports.auth0}/  (not Auth0: a local stand-in)",
        f"  breach range API   http://{HOST}:{ports.pwned}/__pwned/requests  (a local stand-in"
        " for Pwned Passwords)",
        "",
        "  demo users:",
    ]
    lines += [f"    {u['email']:<24} {u.get('password') or '(social login only)'}" for u in users]
    lines += ["", f"  breached passwords the reset form refuses: {', '.join(BREACHED_EXAMPLES)}"]
    lines += [
        "",
        "  or from a shell:",
        f"    export WEBHOOK_SECRET='{env['WEBHOOK_SECRET']}'",
        '    echo \'{"type":"password_reset.requested","data":{"email":"jane@example.com"}}\''
        " > body.json",
        f"    {_command()} sign body.json | curl -sS http://{HOST}:{ports.service}/hooks/website"
        " -H 'content-type: application/json' -H @- --data-binary @body.json",
        "",
    ]
    return "\n".join(lines)


def _command() -> str:
    """How this shell reached `resetrelay` (`.venv/bin/resetrelay` under `make run`), so
    the printed example runs as written even when the venv is not on PATH."""
    invoked = sys.argv[0]
    if Path(invoked).name == "resetrelay":
        return shlex.quote(invoked)
    return f"{shlex.quote(sys.executable)} -m resetrelay"


class PortInUse(Exception):
    pass


def check_ports(ports: DemoPorts) -> None:
    """Fail with one clear line, before anything starts, if a port is taken."""
    flags = {
        "service": "--port",
        "auth0": "--auth0-port",
        "inbox": "--inbox-port",
        "smtp": "--smtp-port",
        "website": "--website-port",
        "pwned": "--pwned-port",
    }
    for name, flag in flags.items():
        port = getattr(ports, name)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                raise PortInUse(f"port {port} is in use; choose another with {flag}") from None


async def run_demo(ports: DemoPorts, overrides: Mapping[str, str]) -> None:
    from devkit.catcher import MailCatcher
    from devkit.emulator import create_emulator
    from devkit.pwned import create_range_api
    from devkit.website.app import create_website
    from hooks.app import create_app

    check_ports(ports)
    logs.configure("WARNING")
    with tempfile.TemporaryDirectory(prefix="resetrelay-demo-") as folder:
        env = demo_env(ports, Path(folder), overrides)
        settings = Settings.from_env(env, demo=True)
        users = json.loads(USERS_FILE.read_text())
        catcher = MailCatcher(HOST, ports.smtp)
        catcher.start()
        apps = [
            (create_app(settings), ports.service),
            (
                create_emulator(
                    domain=settings.auth0_domain,
                    users_file=str(USERS_FILE),
                    log_stream_url=f"http://{HOST}:{ports.service}/hooks/auth0",
                    log_stream_token=env["AUTH0_LOG_STREAM_TOKEN"],
                ),
                ports.auth0,
            ),
            (catcher.web_app(), ports.inbox),
            (create_range_api(), ports.pwned),
            (
                create_website(
                    resetrelay_url=f"http://{HOST}:{ports.service}",
                    webhook_secret=env["WEBHOOK_SECRET"],
                    auth0_url=f"http://{HOST}:{ports.auth0}",
                    brand_name=settings.brand_name,
                ),
                ports.website,
            ),
        ]
        servers = [
            uvicorn.Server(
                uvicorn.Config(
                    app, host=HOST, port=port, log_config=None, access_log=False, lifespan="auto"
                )
            )
            for app, port in apps
        ]
        try:
            async with anyio.create_task_group() as tg:
                for server in servers:
                    # One signal handler for all of them (below), not one each.
                    tg.start_soon(server._serve)
                with anyio.fail_after(30):
                    while not all(server.started for server in servers):  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                        await anyio.sleep(0.05)
                print(banner(ports, users, env), flush=True)
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        break
                for server in servers:
                    server.should_exit = True
        finally:
            catcher.stop()
