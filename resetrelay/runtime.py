"""The composition root: builds the database, clients and workers once from
Settings and hands them to the app and the worker (no import-time globals).

Tests pass their own seams: an httpx transport for Auth0 (the emulator through
`ASGITransport` or real HTTP), a mailer pointed at a loopback SMTP server, a
frozen clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio
import httpx

from identity.client import Auth0Client
from mail.render import Brand, MailRenderer
from mail.smtp import SmtpMailer
from resetrelay.flow import ResetFlow
from resetrelay.logevents import LogEvents
from resetrelay.metrics import CountingTransport, Metrics
from resetrelay.settings import Settings
from resetrelay.tasks import Tasks
from resetrelay.tickets import TicketCodec
from resetrelay.worker import Worker
from storage import inbound, jobs, ratelimits, tokens
from storage.database import Database, StorageError

log = logging.getLogger("resetrelay.runtime")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    metrics: Metrics
    codec: TicketCodec
    auth0: Auth0Client
    mailer: SmtpMailer
    renderer: MailRenderer
    http: httpx.AsyncClient
    flow: ResetFlow
    tasks: Tasks
    log_events: LogEvents
    worker: Worker
    now: Callable[[], datetime]
    _last_prune: float = field(default=0.0)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        auth0_transport: httpx.AsyncBaseTransport | None = None,
        mailer: SmtpMailer | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = utc_now,
        db: Database | None = None,
        worker_poll_interval: float = 1.0,
    ) -> Runtime:
        metrics = Metrics()
        db = db or Database(settings.database_url)
        codec = TicketCodec(settings.secret_key.reveal())
        transport = CountingTransport(
            auth0_transport or httpx.AsyncHTTPTransport(retries=0), metrics
        )
        auth0 = Auth0Client(
            base_url=settings.auth0_base_url,
            domain=settings.auth0_domain,
            client_id=settings.auth0_client_id,
            client_secret=settings.auth0_client_secret.reveal(),
            connection=settings.auth0_connection,
            transport=transport,
            clock=lambda: now().timestamp(),
        )
        renderer = MailRenderer(
            Brand(
                name=settings.brand_name,
                logo_url=settings.brand_logo_url,
                color=settings.brand_color,
                support_email=settings.support_email,
            ),
            default_locale=settings.default_locale,
            templates_dir=settings.mail_templates_dir or None,
        )
        mailer = mailer or SmtpMailer(settings.smtp_url.reveal())
        http = httpx.AsyncClient(
            transport=http_transport, timeout=httpx.Timeout(10.0), follow_redirects=False
        )
        worker = Worker(
            db=db, kinds={}, now=now, metrics=metrics, poll_interval=worker_poll_interval
        )
        flow = ResetFlow(settings, db, codec, auth0, metrics, now, wake_worker=worker.wake)
        tasks = Tasks(settings, db, codec, auth0, mailer, renderer, http, metrics, now)
        log_events = LogEvents(settings, db, codec, auth0, metrics, now, wake_worker=worker.wake)
        worker.kinds = {**tasks.kinds(), **log_events.kinds()}
        runtime = cls(
            settings,
            db,
            metrics,
            codec,
            auth0,
            mailer,
            renderer,
            http,
            flow,
            tasks,
            log_events,
            worker,
            now,
        )
        worker.on_idle = runtime.maintain
        return runtime

    async def maintain(self) -> None:
        """Hourly housekeeping while idle: forget old dedupe rows and counters."""
        if anyio.current_time() - self._last_prune < 3600 and self._last_prune:
            return
        self._last_prune = anyio.current_time()
        now = self.now()
        try:
            async with self.db.begin() as conn:
                # Standard Webhooks senders retry for about a day and a half.
                await inbound.prune(conn, older_than=now - timedelta(days=3))
                await ratelimits.prune(conn, now=now, keep=timedelta(days=2))
                await tokens.prune(conn, now=now)
        except StorageError:
            log.warning("maintenance skipped: database unavailable")

    async def refresh_gauges(self) -> None:
        async with self.db.begin() as conn:
            stats = await jobs.stats(conn, now=self.now())
        self.metrics.queue_depth.set(stats.depth)
        self.metrics.queue_age.set(stats.oldest_age_seconds)
        self.metrics.jobs_dead.set(stats.dead)

    async def aclose(self) -> None:
        await self.auth0.aclose()
        await self.mailer.aclose()
        await self.http.aclose()
        await self.db.dispose()
