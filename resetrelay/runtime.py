"""The composition root: builds the database, clients, the reset flow, the
courier and the worker once from Settings, in dependency order, and hands them
to the app and the worker. Nothing is patched after it is built.

Tests pass their own seams: an httpx transport for Auth0 (the emulator through
`ASGITransport` or real HTTP) and for the breach range API, a mailer pointed at a
loopback SMTP server, a frozen clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import httpx

from identity.client import Auth0Client
from identity.transport import AiohttpTransport
from mail.render import Brand, MailRenderer
from mail.smtp import SmtpMailer
from resetrelay.breaches import BreachCorpus
from resetrelay.budget import BudgetTransport
from resetrelay.courier import Courier
from resetrelay.housekeeping import Housekeeping
from resetrelay.jobs.kinds import Registry
from resetrelay.jobs.worker import Doorbell, Worker
from resetrelay.metrics import CountingTransport, Metrics
from resetrelay.readiness import Readiness
from resetrelay.reset.auth0_events import Auth0Events
from resetrelay.reset.bulk import BulkResets
from resetrelay.reset.codes import Codes
from resetrelay.reset.confirm import Confirms
from resetrelay.reset.dispute_links import DisputeLinks, codec_for
from resetrelay.reset.disputes import Disputes
from resetrelay.reset.outcomes import Replays
from resetrelay.reset.requests import Requests
from resetrelay.reset.tickets import TicketCodec, Tickets
from resetrelay.settings import Settings
from storage.database import Database
from storage.migrate import upgrade

DOORBELL_DELAY = (0.001, 0.025)  # seconds


def utc_now() -> datetime:
    return datetime.now(UTC)


def renderer_for(settings: Settings) -> MailRenderer:
    return MailRenderer(
        Brand(
            name=settings.brand_name,
            logo_url=settings.brand_logo_url,
            color=settings.brand_color,
            support_email=settings.support_email,
        ),
        default_locale=settings.default_locale,
        templates_dir=settings.mail_templates_dir or None,
    )


@dataclass
class Runtime:
    settings: Settings
    db: Database
    metrics: Metrics
    codec: TicketCodec
    auth0: Auth0Client
    live_auth0: Auth0Client
    bulk_auth0: Auth0Client
    mailer: SmtpMailer
    renderer: MailRenderer
    http: httpx.AsyncClient
    breaches: BreachCorpus | None
    requests: Requests
    confirms: Confirms
    codes: Codes
    disputes: Disputes
    replays: Replays
    auth0_events: Auth0Events
    courier: Courier
    housekeeping: Housekeeping
    worker: Worker
    readiness: Readiness
    now: Callable[[], datetime]

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        auth0_transport: httpx.AsyncBaseTransport | None = None,
        mailer: SmtpMailer | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        breach_transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = utc_now,
        db: Database | None = None,
        worker_poll_interval: float = 1.0,
    ) -> Runtime:
        metrics = Metrics()
        db = db or Database(settings.database_url)
        codec = TicketCodec(settings.secret_key.reveal())
        tickets = Tickets(codec, db, settings.reset_url)
        # Auth0's calls go out through aiohttp (identity.transport says why); the
        # other outbound calls are few and keep httpx's own transport.
        counted = CountingTransport(auth0_transport or AiohttpTransport(), metrics)

        def auth0_client(*, live: bool, bulk: bool = False) -> Auth0Client:
            # Jobs and the live path (a confirm a person waits for) share one budget
            # when AUTH0_RATE_LIMIT is set; jobs stop short of the live reserve.
            transport: httpx.AsyncBaseTransport = counted
            if settings.auth0_rate_limit is not None:
                transport = BudgetTransport(
                    counted,
                    db,
                    now,
                    metrics,
                    limit=settings.auth0_rate_limit,
                    reserve_percent=settings.auth0_live_reserve,
                    live=live,
                    bulk=bulk,
                )
            return Auth0Client(
                base_url=settings.auth0_base_url,
                domain=settings.auth0_domain,
                client_id=settings.auth0_client_id,
                client_secret=settings.auth0_client_secret.reveal(),
                connection=settings.auth0_connection,
                transport=transport,
                clock=lambda: now().timestamp(),
            )

        auth0 = auth0_client(live=False)
        live_auth0 = auth0_client(live=True)
        bulk_auth0 = auth0_client(live=False, bulk=True)
        renderer = renderer_for(settings)
        mailer = mailer or SmtpMailer(settings.smtp_url.reveal())
        http = httpx.AsyncClient(
            transport=http_transport, timeout=httpx.Timeout(10.0), follow_redirects=False
        )
        breaches = (
            BreachCorpus(
                settings.pwned_passwords_url,
                timeout=settings.pwned_passwords_timeout_seconds,
                transport=breach_transport,
            )
            if settings.pwned_passwords_url
            else None
        )
        # Jobs start 1 to 25 ms after the request that queued them (Doorbell): after its
        # answer went out, at a moment unrelated to the next requests' answers.
        doorbell = Doorbell(delay=DOORBELL_DELAY)
        requests = Requests(settings, db, codec, auth0, metrics, now, doorbell.ring)
        confirms = Confirms(
            settings, db, tickets, live_auth0, metrics, now, doorbell.ring, breaches=breaches
        )
        auth0_events = Auth0Events(settings, db, codec, auth0, metrics, now, doorbell.ring)
        codes = Codes(settings, db, tickets, confirms, metrics, now)
        links = DisputeLinks(codec_for(settings), db, settings.dispute_url)
        disputes = Disputes(settings, db, links, codec, auth0, metrics, now, doorbell.ring)
        courier = Courier(
            settings,
            db,
            mailer,
            renderer,
            http,
            metrics,
            now,
            tickets.link,
            code=codes.codec.shown,
            dispute_link=links.link,
        )
        bulk_resets = BulkResets(settings, db, codec, bulk_auth0, metrics, now)
        registry = Registry()
        for service in (requests, confirms, disputes, auth0_events, courier, bulk_resets):
            service.register(registry)
        housekeeping = Housekeeping(
            db, metrics, now, retention=timedelta(days=settings.retention_days)
        )
        worker = Worker(
            db=db,
            kinds=registry.table(),
            now=now,
            metrics=metrics,
            poll_interval=worker_poll_interval,
            on_idle=housekeeping.run,
            doorbell=doorbell,
        )
        return cls(
            settings=settings,
            db=db,
            metrics=metrics,
            codec=codec,
            auth0=auth0,
            live_auth0=live_auth0,
            bulk_auth0=bulk_auth0,
            mailer=mailer,
            renderer=renderer,
            http=http,
            breaches=breaches,
            requests=requests,
            confirms=confirms,
            codes=codes,
            disputes=disputes,
            replays=Replays(db, now),
            auth0_events=auth0_events,
            courier=courier,
            housekeeping=housekeeping,
            worker=worker,
            readiness=Readiness(db, inline_worker=settings.inline_worker, tenant=confirms.tenant),
            now=now,
        )

    async def migrate(self) -> None:
        """Create or upgrade the schema (Alembic, in a thread: it is synchronous)."""
        await anyio.to_thread.run_sync(upgrade, self.settings.database_url)

    async def aclose(self) -> None:
        await self.auth0.aclose()
        await self.live_auth0.aclose()
        await self.bulk_auth0.aclose()
        await self.mailer.aclose()
        await self.http.aclose()
        if self.breaches is not None:
            await self.breaches.aclose()
        await self.db.dispose()
