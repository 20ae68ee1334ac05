"""The `resetrelay` console script (SPEC §2)."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import anyio

from resetrelay import logs
from resetrelay.settings import Settings, SettingsError


def _settings(*, demo: bool = False) -> Settings:
    try:
        return Settings.from_env(os.environ, demo=demo)
    except SettingsError as exc:
        print(f"resetrelay: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hooks.app import create_app

    settings = _settings()
    logs.configure()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # nothing here trusts client-supplied forwarding headers
        server_header=False,
        timeout_graceful_shutdown=20,  # Heroku sends SIGKILL 30 s after SIGTERM
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from resetrelay.runtime import Runtime

    settings = _settings()
    logs.configure()

    async def main() -> None:
        runtime = Runtime.build(settings)
        stop = anyio.Event()

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    stop.set()
                    return

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(on_signal)
                await runtime.worker.run(stop, grace=20.0)
                tg.cancel_scope.cancel()
        finally:
            await runtime.aclose()

    anyio.run(main)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from storage.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    print("resetrelay: schema is up to date")
    return 0


def cmd_secret(args: argparse.Namespace) -> int:
    from resetrelay.webhooks import new_secret

    print(secrets.token_urlsafe(48) if args.key else new_secret())
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    import base64

    from resetrelay.webhooks import sign

    text = args.secret or os.environ.get("WEBHOOK_SECRET", "").split(" ")[0]
    if not text:
        print(
            "resetrelay: WEBHOOK_SECRET is required but not set (or pass --secret)", file=sys.stderr
        )
        return 2
    body_text = text.removeprefix("whsec_")
    key = base64.b64decode(body_text + "=" * (-len(body_text) % 4))
    body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    headers = sign(
        key, args.id or f"msg_{uuid.uuid4().hex}", args.timestamp or int(time.time()), body
    )
    for name, value in headers.items():
        print(f"-H '{name}: {value}'" if args.curl else f"{name}: {value}")
    return 0


def cmd_emulate_auth0(args: argparse.Namespace) -> int:
    try:
        from devkit.emulator import run_emulator
    except ImportError as exc:
        return _devkit_missing(exc)

    run_emulator(args.host, args.port, args.users, args.rate_limit)
    return 0


def cmd_send_test_mail(args: argparse.Namespace) -> int:
    from resetrelay.testmail import send_test_mail

    settings = _settings()
    logs.configure()
    anyio.run(send_test_mail, settings, args.to, args.template, args.locale)
    print(f"resetrelay: sent a {args.template!r} test mail")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from mail.preview import write_previews
    from resetrelay.runtime import renderer_for

    settings = _settings(demo=True)
    write_previews(renderer_for(settings), Path(args.folder), args.locale or ["en"])
    print(f"resetrelay: previews written to {args.folder}")
    return 0


def _devkit_missing(exc: ImportError) -> int:
    # The development kit's own dependencies are an extra (pip install 'resetrelay[demo]').
    print(
        f"resetrelay: this command needs the development kit ({exc.name} is not installed);"
        " install it with: pip install 'resetrelay[demo]'",
        file=sys.stderr,
    )
    return 2


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        from devkit.demo import DemoPorts, PortInUse, run_demo
    except ImportError as exc:
        return _devkit_missing(exc)

    ports = DemoPorts(
        service=args.port,
        auth0=args.auth0_port,
        inbox=args.inbox_port,
        smtp=args.smtp_port,
        website=args.website_port,
    )
    try:
        anyio.run(run_demo, ports, dict(os.environ))
    except PortInUse as exc:
        print(f"resetrelay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="resetrelay", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service").set_defaults(func=cmd_serve)
    sub.add_parser("worker", help="run the job/outbox worker").set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="create or upgrade the schema").set_defaults(func=cmd_migrate)
    s = sub.add_parser("secret", help="print a fresh whsec_ webhook secret")
    s.add_argument("--key", action="store_true", help="print a fresh SECRET_KEY instead")
    s.set_defaults(func=cmd_secret)
    s = sub.add_parser("sign", help="print Standard Webhooks headers for a body")
    s.add_argument("file", nargs="?", default="-", help="body file, or - for stdin")
    s.add_argument("--secret", help="whsec_ secret (default: first of WEBHOOK_SECRET)")
    s.add_argument("--id", help="webhook-id (default: random)")
    s.add_argument("--timestamp", type=int, help="unix seconds (default: now)")
    s.add_argument("--curl", action="store_true", help="print as curl -H arguments")
    s.set_defaults(func=cmd_sign)
    s = sub.add_parser(
        "demo",
        help="the whole product locally: service, Auth0 emulator, mail inbox and a demo website",
    )
    s.add_argument("--port", type=int, default=8000, help="resetrelay (default 8000)")
    s.add_argument("--auth0-port", type=int, default=8001)
    s.add_argument("--inbox-port", type=int, default=8025)
    s.add_argument("--smtp-port", type=int, default=1025)
    s.add_argument("--website-port", type=int, default=8080)
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("emulate-auth0", help="run the local Auth0 emulator (not Auth0)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8001)
    s.add_argument("--users", help="users JSON file (default: demo users)")
    s.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="Management API requests per second (e.g. 2 for the Free plan)",
    )
    s.set_defaults(func=cmd_emulate_auth0)
    s = sub.add_parser("send-test-mail", help="render and send one branded mail")
    s.add_argument("--to", required=True)
    s.add_argument(
        "--template", default="reset", choices=["reset", "changed", "breached", "blocked"]
    )
    s.add_argument("--locale", default=None)
    s.set_defaults(func=cmd_send_test_mail)
    s = sub.add_parser("preview", help="write every mail as .eml and .html")
    s.add_argument("folder")
    s.add_argument("--locale", action="append", help="locale(s) to render (default: en)")
    s.set_defaults(func=cmd_preview)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))
