"""The `resetrelay` console script: the service's processes and its operators' tools.

Every command reads only the settings it uses and reports every problem at
once (exit 2). A failure it expects (a database, relay or file that cannot be
reached) is one line on stderr (exit 1); `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio

from resetrelay import __version__, logs
from resetrelay.settings import MAIL, PREVIEW, WEB, WORKER, Settings, SettingsError

log = logging.getLogger("resetrelay.cli")
T = TypeVar("T")


class CommandFailed(Exception):
    """An expected failure, said in one line (no traceback unless --debug)."""


def _settings(*roles: str, demo: bool = False) -> Settings:
    try:
        return Settings.from_env(os.environ, roles=roles, demo=demo)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"resetrelay: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def _inline_worker() -> bool:
    return os.environ.get("INLINE_WORKER", "true").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def _started(process: str, settings: Settings) -> None:
    log.info(
        "resetrelay started",
        extra={
            "fields": {
                "process": process,
                "version": __version__,
                "database": logs.mask_url(settings.database_url),
            }
        },
    )


async def _schema_current(settings: Settings) -> None:
    """Refuse to work on a database whose schema is not at the newest migration."""
    from storage.database import Database, StorageError
    from storage.migrate import schema_state

    db = Database(settings.database_url)
    try:
        state = await schema_state(db)
    except StorageError as exc:
        raise CommandFailed(f"the database does not answer ({exc})") from exc
    finally:
        await db.dispose()
    if not state.current:
        raise CommandFailed(state.describe())


def _exit_on_sigterm() -> None:
    # Until the process's own handlers are in place (uvicorn's, the worker's), a
    # SIGTERM from the platform during start-up still ends it cleanly (status 0).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def cmd_serve(args: argparse.Namespace) -> int:
    _exit_on_sigterm()
    import uvicorn

    from hooks.app import create_app

    inline = _inline_worker()
    settings = _settings(WEB, *((WORKER,) if inline else ()))
    logs.configure(settings.log_level)
    _started("web+worker" if inline else "web", settings)
    uvicorn.run(create_app(settings), **_server_options(settings, settings.port))
    return 0


def _server_options(settings: Settings, port: int) -> dict[str, Any]:
    """uvicorn's settings for every server of ours."""
    return {
        "host": settings.host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,  # nothing here trusts client-supplied forwarding headers
        "server_header": False,
        "timeout_graceful_shutdown": 20,  # Heroku sends SIGKILL 30 s after SIGTERM
    }


def cmd_worker(args: argparse.Namespace) -> int:
    _exit_on_sigterm()
    from resetrelay.runtime import Runtime

    settings = _settings(WORKER)
    logs.configure(settings.log_level)
    anyio.run(_schema_current, settings)
    _started("worker", settings)

    async def main() -> None:
        runtime = Runtime.build(settings)
        stop = anyio.Event()

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    stop.set()
                    return

        metrics_server = None
        if settings.metrics_port:
            import uvicorn

            from hooks.app import create_metrics_app

            app = create_metrics_app(runtime)
            options = _server_options(settings, settings.metrics_port)
            metrics_server = uvicorn.Server(uvicorn.Config(app, lifespan="off", **options))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(on_signal)
                if metrics_server is not None:
                    # Our signal handler stops both; uvicorn's own would stop only itself.
                    tg.start_soon(metrics_server._serve)
                await runtime.worker.run(stop, grace=20.0)
                if metrics_server is not None:
                    metrics_server.should_exit = True
                tg.cancel_scope.cancel()
        finally:
            await runtime.aclose()

    anyio.run(main)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from storage.database import StorageError
    from storage.migrate import upgrade

    settings = _settings()
    try:
        upgrade(settings.database_url)
    except StorageError as exc:
        raise CommandFailed(
            f"cannot migrate {logs.mask_url(settings.database_url)}: the database does not "
            f"answer ({exc})"
        ) from exc
    print("resetrelay: schema is up to date")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from resetrelay.reference import config_report

    text, complete = config_report(os.environ)
    print(text)
    return 0 if complete else 2


def cmd_check(args: argparse.Namespace) -> int:
    from resetrelay.doctor import run_checks

    report = anyio.run(lambda: run_checks(os.environ, step_seconds=args.timeout))
    print(report.json() if args.json else report.table())
    return 0 if report.ok else 1


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
    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise CommandFailed(f"cannot read {args.file}: {exc.strerror}") from exc
    headers = sign(
        key, args.id or f"msg_{uuid.uuid4().hex}", args.timestamp or int(time.time()), body
    )
    for name, value in headers.items():
        print(f"-H '{name}: {value}'" if args.curl else f"{name}: {value}")
    return 0


def _devkit_missing(exc: ImportError) -> int:
    # The development kit's own dependencies are an extra (pip install 'resetrelay[demo]').
    print(
        f"resetrelay: this command needs the development kit ({exc.name} is not installed);"
        " install it with: pip install 'resetrelay[demo]'",
        file=sys.stderr,
    )
    return 2


def cmd_emulate_auth0(args: argparse.Namespace) -> int:
    try:
        from devkit.emulator import run_emulator
    except ImportError as exc:
        return _devkit_missing(exc)

    run_emulator(args.host, args.port, args.users, args.rate_limit)
    return 0


def cmd_send_test_mail(args: argparse.Namespace) -> int:
    from mail.errors import MailError
    from resetrelay.testmail import send_test_mail

    settings = _settings(MAIL)
    logs.configure(settings.log_level)
    try:
        anyio.run(send_test_mail, settings, args.to, args.template, args.locale)
    except MailError as exc:
        raise CommandFailed(f"the mail was not sent: {exc}") from exc
    print(f"resetrelay: sent a {args.template!r} test mail")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from mail.preview import write_previews
    from resetrelay.runtime import renderer_for

    settings = _settings(PREVIEW)
    write_previews(renderer_for(settings), Path(args.folder), args.locale or ["en"])
    print(f"resetrelay: previews written to {args.folder}")
    return 0


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
        pwned=args.pwned_port,
    )
    try:
        anyio.run(run_demo, ports, dict(os.environ))
    except PortInUse as exc:
        print(f"resetrelay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


# --- inspect: inspect, tickets revoke, jobs list|retry|purge, outbox stats, funnel ---


def _on_database(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(db)` on a migrated DATABASE_URL; a database that does not answer is
    one line (exit 1)."""
    from storage.database import Database, StorageError

    async def main() -> T:
        await _schema_current(settings)
        db = Database(settings.database_url)
        try:
            return await work(db)
        except StorageError as exc:
            raise CommandFailed(f"the database does not answer ({exc})") from exc
        finally:
            await db.dispose()

    return anyio.run(main)


def _subjects(settings: Settings) -> Any:
    """Audit subjects are keyed by SECRET_KEY: a command that names a person needs it."""
    from resetrelay.audit import Subjects

    key = settings.secret_key.reveal()
    if not key:
        print("resetrelay: SECRET_KEY is required but not set", file=sys.stderr)
        raise SystemExit(2)
    return Subjects(key)


def _now() -> datetime:
    return datetime.now(UTC)


def cmd_inspect(args: argparse.Namespace) -> int:
    from resetrelay.operators import history

    settings = _settings()
    subjects = _subjects(settings)
    found = _on_database(
        settings,
        lambda db: history.gather(db, subjects, now=_now(), email=args.email, user_id=args.user),
    )
    print(history.dumps(found) if args.json else history.as_text(found))
    return 0


def cmd_tickets_revoke(args: argparse.Namespace) -> int:
    from resetrelay.audit import Operator
    from resetrelay.operators.revocation import revoke

    settings = _settings()
    subjects = _subjects(settings)
    done = _on_database(
        settings,
        lambda db: revoke(
            db,
            subjects,
            Operator.current(),
            now=_now(),
            email=args.email,
            user_id=args.user,
            reason=args.reason,
        ),
    )
    users = len(done.user_ids)
    print(
        f"resetrelay: revoked {done.count} open ticket{'s' * (done.count != 1)}"
        f" of {users} user{'s' * (users != 1)}"
    )
    return 0


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from resetrelay.operators import queue

    settings = _settings()
    rows = _on_database(
        settings,
        lambda db: queue.listing(db, state=args.state, kind=args.kind, limit=args.limit),
    )
    print(queue.jobs_json(rows) if args.json else queue.jobs_text(rows))
    return 0


def cmd_jobs_retry(args: argparse.Namespace) -> int:
    from resetrelay.audit import Operator
    from resetrelay.operators import queue

    if not args.ids and not args.all_dead:
        raise CommandFailed("name the jobs to retry (IDs) or pass --all-dead")
    if args.ids and args.all_dead:
        raise CommandFailed("give job IDs or --all-dead, not both")
    settings = _settings()
    asked = None if args.all_dead else list(dict.fromkeys(args.ids))
    done = _on_database(
        settings, lambda db: queue.retry(db, Operator.current(), now=_now(), job_ids=asked)
    )
    ids = ", ".join(map(str, done.job_ids)) or "none"
    n = len(done.job_ids)
    print(f"resetrelay: requeued {n} dead job{'s' * (n != 1)} for one more attempt: {ids}")
    if done.mails_requeued:
        print(f"resetrelay: {done.mails_requeued} dead mail(s) queued again with their jobs")
    left = [i for i in asked or [] if i not in done.job_ids]
    if left:
        raise CommandFailed(f"not dead (or no such job), left alone: {', '.join(map(str, left))}")
    return 0


def cmd_jobs_purge(args: argparse.Namespace) -> int:
    from resetrelay.audit import Operator
    from resetrelay.operators import queue

    try:
        older_than = queue.parse_duration(args.older_than)
    except ValueError as exc:
        raise CommandFailed(f"--older-than: {exc}") from exc
    settings = _settings()
    deleted = _on_database(
        settings,
        lambda db: queue.purge(db, Operator.current(), now=_now(), older_than=older_than),
    )
    print(f"resetrelay: deleted {deleted} finished job{'s' * (deleted != 1)} (done or dead)")
    return 0


def cmd_outbox_stats(args: argparse.Namespace) -> int:
    from resetrelay.operators import funnel, queue

    settings = _settings()

    async def work(db: Any) -> tuple[queue.OutboxStats, funnel.Funnel]:
        now = _now()
        return await queue.outbox_stats(db, now=now), await funnel.read(db, now=now, days=7)

    stats, counted = _on_database(settings, work)
    print(queue.outbox_json(stats, counted) if args.json else queue.outbox_text(stats, counted))
    return 0


def cmd_funnel(args: argparse.Namespace) -> int:
    from resetrelay.operators import funnel

    if args.days < 1:
        raise CommandFailed("--days must be at least 1")
    settings = _settings()
    counted = _on_database(settings, lambda db: funnel.read(db, now=_now(), days=args.days))
    print(funnel.dumps(counted) if args.json else funnel.as_text(counted))
    return 0


# --- retention: forget ---


def cmd_forget(args: argparse.Namespace) -> int:
    from resetrelay.audit import Operator, Subjects
    from resetrelay.operators.erasure import Erasure, Named, NoOneNamed
    from resetrelay.settings import OPERATOR
    from storage.database import Database, StorageError

    try:
        named = Named(email=args.email, user_id=args.user)
    except NoOneNamed as exc:
        raise CommandFailed(str(exc)) from exc
    settings = _settings(OPERATOR)
    who = logs.mask_email(named.email) if named.email else f"user {named.user_id}"

    async def main() -> int:
        db = Database(settings.database_url)
        erasure = Erasure(
            db, Subjects(settings.secret_key.reveal()), Operator.current(), _forget_now
        )
        try:
            await _schema_current(settings)
            if not args.yes:
                counts = await erasure.count(named)
                print(f"rows about {who} in this database:")
                print(_forget_table(counts))
                if not _forget_confirmed("erase them all, and keep only an audit line? [y/N] "):
                    print("resetrelay: nothing erased")
                    return 1
            erased = await erasure.forget(named)
        except StorageError as exc:
            raise CommandFailed(f"the database does not answer ({exc})") from exc
        finally:
            await db.dispose()
        print(f"erased {erased.rows} rows about {who}:")
        print(_forget_table(erased.counts))
        print(
            f"audit line {erased.audit_id} keeps the pseudonym {erased.subject[:16]}…, no address"
        )
        print("Auth0 still holds the user: deleting it there is the tenant's (docs/data.md).")
        return 0

    return anyio.run(main)


def _forget_now() -> datetime:
    return datetime.now(UTC)


def _forget_table(counts: dict[str, int]) -> str:
    width = max(len("table"), *(len(name) for name in counts))
    lines = [f"  {'table':<{width}}  rows"]
    lines += [f"  {name:<{width}}  {n:>4}" for name, n in counts.items()]
    return "\n".join(lines)


def _forget_confirmed(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


# --- bulk: bulk-reset ---


def cmd_bulk_reset(args: argparse.Namespace) -> int:
    from resetrelay.audit import Operator
    from resetrelay.operators import bulk
    from storage.database import Database, StorageError

    settings = _settings()
    try:
        breach = bulk.read_breach_list(Path(args.source))
    except bulk.BulkError as exc:
        raise CommandFailed(str(exc)) from exc
    run_id = args.run_id or bulk.default_run_id(breach)
    anyio.run(_schema_current, settings)

    async def main() -> int:
        db = Database(settings.database_url)
        try:
            if args.dry_run:
                print(bulk.dry_run(breach, run_id, await bulk.done_in_run(db, run_id)))
                return 0
            operator, now = Operator.current(), _utc_now
            started = await bulk.start(
                db, breach, run_id=run_id, template=args.template, operator=operator, now=now()
            )
            added = await bulk.enqueue(db, breach, started, now=now())
            verb = "continues" if started.resumed else "starts"
            print(
                f"resetrelay: bulk-reset run {run_id} {verb}: {breach.total} lines, "
                f"{added} handed to the workers now, {started.done_before} done before",
                flush=True,
            )
            tty = sys.stdout.isatty() and not args.plain
            progress: bulk.Progress = (
                bulk.BarProgress(sys.stdout, breach.total)
                if tty
                else bulk.PlainProgress(sys.stdout, every=args.every)
            )
            try:
                counts = await bulk.watch(db, started, breach.total, progress)
            finally:
                progress.close()
            reasons = await bulk.finish(db, started, counts, operator=operator, now=now())
            print(bulk.summary(started, counts, reasons), flush=True)
            return 0
        except bulk.BulkError as exc:
            raise CommandFailed(str(exc)) from exc
        except StorageError as exc:
            raise CommandFailed(f"the database does not answer ({exc})") from exc
        finally:
            await db.dispose()

    try:
        return anyio.run(main)
    except KeyboardInterrupt:
        print(
            f"resetrelay: stopped watching run {run_id}; the workers go on with its lines. "
            "Run the same command again to follow it.",
            file=sys.stderr,
        )
        return 130


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    func: Callable[[argparse.Namespace], int],
    summary: str,
    description: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=summary, description=description)
    parser.set_defaults(func=func)
    return parser


def _group(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """A command whose actions are subcommands (`resetrelay jobs list`)."""
    parser = sub.add_parser(name, help=summary, description=description)
    return parser.add_subparsers(
        dest=f"{name}_action", required=True, metavar="ACTION", help="what to do"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="resetrelay",
        description="Password reset on your own website for users who live in Auth0. "
        "Settings come from the environment: `resetrelay config` lists them.",
    )
    p.add_argument("--version", action="version", version=f"resetrelay {__version__}")
    p.add_argument("--debug", action="store_true", help="show the traceback when a command fails")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(
        sub,
        "serve",
        cmd_serve,
        "run the HTTP service",
        "Run the HTTP service on HOST:PORT. With INLINE_WORKER=true (the default) the "
        "job worker runs in the same process; set it false when `resetrelay worker` "
        "processes run beside it. Stops cleanly on SIGTERM.",
    )
    _command(
        sub,
        "worker",
        cmd_worker,
        "run the job and mail worker",
        "Run the job worker alone: Auth0 lookups, mail, follow-ups. Any number may run "
        "against one PostgreSQL. Refuses to start on a database that is not migrated.",
    )
    _command(
        sub,
        "migrate",
        cmd_migrate,
        "create or upgrade the database schema",
        "Create or upgrade the schema of DATABASE_URL to the newest migration; "
        "running it again changes nothing (a Procfile `release:` phase).",
    )
    _command(
        sub,
        "config",
        cmd_config,
        "list every setting, its value here and what is missing",
        "List every setting: its default or that it is required, and its value in "
        "this environment (secrets masked). Exits 2 when a deployment's web and "
        "worker processes would be missing something.",
    )
    s = _command(
        sub,
        "check",
        cmd_check,
        "check that this deployment is ready",
        "Check the settings, the database and its schema, the Auth0 token and its scopes, "
        "the connection, the SMTP relay and MAIL_FROM, and RESET_URL. Prints a table with "
        "a fix for each failure; exits 0 only when every check holds, else 1.",
    )
    s.add_argument("--json", action="store_true", help="print the results as JSON, for scripts")
    s.add_argument("--timeout", type=float, default=5.0, help="seconds for each network step (5)")
    s = _command(
        sub,
        "secret",
        cmd_secret,
        "print a fresh webhook secret",
        "Print a fresh Standard Webhooks secret (whsec_...) for WEBHOOK_SECRET.",
    )
    s.add_argument("--key", action="store_true", help="print a fresh SECRET_KEY instead")
    s = _command(
        sub,
        "sign",
        cmd_sign,
        "print Standard Webhooks headers for a body",
        "Print the webhook-id, webhook-timestamp and webhook-signature headers for a "
        "body, one per line (for curl -H @-).",
    )
    s.add_argument("file", nargs="?", default="-", help="the body's file, or - for stdin")
    s.add_argument("--secret", help="whsec_ secret (default: the first of WEBHOOK_SECRET)")
    s.add_argument("--id", help="the webhook-id (default: a random one)")
    s.add_argument("--timestamp", type=int, help="unix seconds (default: now)")
    s.add_argument("--curl", action="store_true", help="print them as curl -H arguments")
    s = _command(
        sub,
        "demo",
        cmd_demo,
        "the whole product locally, with no accounts",
        "Run the service, a local Auth0 emulator, a mail inbox and a demo website, all "
        "on 127.0.0.1 (needs the [demo] extra, which `make run` installs).",
    )
    s.add_argument("--port", type=int, default=8000, help="resetrelay's port (8000)")
    s.add_argument("--auth0-port", type=int, default=8001, help="the emulator's port (8001)")
    s.add_argument("--inbox-port", type=int, default=8025, help="the web inbox's port (8025)")
    s.add_argument("--smtp-port", type=int, default=1025, help="the mail catcher's port (1025)")
    s.add_argument("--website-port", type=int, default=8080, help="the demo website's (8080)")
    s.add_argument(
        "--pwned-port", type=int, default=8002, help="the local breach range API's (8002)"
    )
    s = _command(
        sub,
        "emulate-auth0",
        cmd_emulate_auth0,
        "run the local Auth0 emulator (not Auth0)",
        "Run the local stand-in for Auth0's Management API, for development and tests.",
    )
    s.add_argument("--host", default="127.0.0.1", help="listen address (127.0.0.1)")
    s.add_argument("--port", type=int, default=8001, help="listen port (8001)")
    s.add_argument("--users", help="a users JSON file (default: the demo users)")
    s.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="Management API requests per second (e.g. 2 for the Free plan)",
    )
    s = _command(
        sub,
        "send-test-mail",
        cmd_send_test_mail,
        "render and send one branded mail now",
        "Render one mail with sample data and send it through SMTP_URL, to check the "
        "relay and the brand.",
    )
    s.add_argument("--to", required=True, help="the recipient")
    s.add_argument(
        "--template",
        default="reset",
        choices=["reset", "changed", "breached", "blocked", "social", "unknown"],
        help="which mail (reset)",
    )
    s.add_argument("--locale", default=None, help="its language (DEFAULT_LOCALE)")
    s = _command(
        sub,
        "preview",
        cmd_preview,
        "write every mail as .eml and .html files",
        "Render every mail with sample data into FOLDER (needs BRAND_NAME).",
    )
    s.add_argument("folder", help="where to write the files")
    s.add_argument("--locale", action="append", help="a language to render (repeatable; en)")
    # --- inspect: inspect, tickets revoke, jobs list|retry|purge, outbox stats, funnel ---
    s = _command(
        sub,
        "inspect",
        cmd_inspect,
        "one person's reset history",
        "Show one person's reset history: tickets (never their values), mails, Auth0 "
        "follow-ups, inbound events and operator actions. Addresses are shown whole "
        "here, because the operator asked for this person. Needs SECRET_KEY.",
    )
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the person's address")
    who.add_argument("--user", help="the person's Auth0 user id (auth0|...)")
    s.add_argument("--json", action="store_true", help="print JSON with stable keys, for scripts")
    group = _group(sub, "tickets", "act on tickets", "Act on one person's tickets.")
    s = _command(
        group,
        "revoke",
        cmd_tickets_revoke,
        "void a person's open tickets",
        "Void every open ticket of the user (or of the users holding one mailed to the "
        "address): their links then verify as `revoked`. Written to the audit trail. "
        "Needs SECRET_KEY.",
    )
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the address the tickets were mailed to")
    who.add_argument("--user", help="the Auth0 user id")
    s.add_argument("--reason", help="why, for the audit trail (not stored with the tickets)")
    group = _group(sub, "jobs", "the job queue", "List, retry and purge jobs.")
    s = _command(
        group,
        "list",
        cmd_jobs_list,
        "list jobs, newest first",
        "List jobs newest first; addresses in payloads are masked.",
    )
    s.add_argument("--state", choices=["queued", "running", "dead", "done"], help="only these")
    s.add_argument("--kind", help="only this kind (e.g. mail.send)")
    s.add_argument("--limit", type=int, default=50, help="at most this many (50)")
    s.add_argument("--json", action="store_true", help="print JSON, for scripts")
    s = _command(
        group,
        "retry",
        cmd_jobs_retry,
        "give dead jobs one more attempt",
        "Put dead jobs back in the queue for one more attempt, due now (a dead mail goes "
        "back to queued with its job). Jobs that are not dead are left alone. Audited.",
    )
    s.add_argument("ids", nargs="*", type=int, help="the dead jobs' ids")
    s.add_argument("--all-dead", action="store_true", help="every dead job")
    s = _command(
        group,
        "purge",
        cmd_jobs_purge,
        "delete old finished jobs",
        "Delete done and dead jobs last changed longer ago than --older-than; queued and "
        "running jobs are never deleted. Audited.",
    )
    s.add_argument("--older-than", required=True, help="a duration: 30d, 12h, 15m, 90s, 2w")
    group = _group(sub, "outbox", "the mail outbox", "The mail outbox for operators.")
    s = _command(
        group,
        "stats",
        cmd_outbox_stats,
        "mails by state and template, the oldest queued, the funnel",
        "Count mails by state and template, show how long the oldest queued mail has "
        "waited, and the last 7 days of the reset funnel by purpose.",
    )
    s.add_argument("--json", action="store_true", help="print JSON, for scripts")
    s = _command(
        sub,
        "funnel",
        cmd_funnel,
        "where users drop out of resets",
        "Show the reset funnel (requested, limited, found, unknown, social, mailed, "
        "opened, completed) per day, purpose and locale, and totals by purpose.",
    )
    s.add_argument("--days", type=int, default=7, help="how many days back, today included (7)")
    s.add_argument("--json", action="store_true", help="print JSON with stable keys, for scripts")
    # --- retention: forget ---
    s = _command(
        sub,
        "forget",
        cmd_forget,
        "erase every row about one person (an erasure request)",
        "Delete every row about one person from resetrelay's database: tickets, mails, "
        "jobs and stored answers that hold the address or the user id (our tickets link "
        "the two). Prints the rows by table and asks first, unless --yes. Keeps one audit "
        "line with a keyed pseudonym, never the address. Auth0 itself is not touched.",
    )
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the person's address")
    who.add_argument("--user", help="the person's Auth0 user id")
    s.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    # --- bulk: bulk-reset ---
    s = _command(
        sub,
        "bulk-reset",
        cmd_bulk_reset,
        "breach response: a reset mail for every user in a CSV file",
        "For every user in FILE.csv (an `email` or `user_id` column): void their open "
        "tickets, issue a ticket and send the `breached` mail. Unknown and social-only "
        "users are counted, not mailed. The work runs in `resetrelay worker` processes "
        "(or the worker inside `serve`); this command hands the lines over and follows "
        "them. Running it again with the same file continues the same run and never "
        "mails a user twice. Exits 0 when the run completed.",
    )
    s.add_argument("--from", dest="source", required=True, metavar="FILE.csv", help="the list")
    s.add_argument(
        "--template",
        default="breached",
        choices=["breached", "reset", "blocked"],
        help="which mail the users get (breached)",
    )
    s.add_argument("--dry-run", action="store_true", help="counts and a sample; writes nothing")
    s.add_argument("--run-id", help="name of the run (default: from the file's content hash)")
    s.add_argument(
        "--every", type=float, default=5.0, help="seconds between progress lines off a terminal (5)"
    )
    s.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CommandFailed as exc:
        if args.debug:
            raise
        print(f"resetrelay: {exc}", file=sys.stderr)
        return 1
