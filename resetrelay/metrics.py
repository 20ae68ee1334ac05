"""Prometheus metrics (`/metrics`, docs/routes.md). One registry per app, so tests and
several apps in one process never share counters."""

from __future__ import annotations

import re

import httpx
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

# Ids in paths (users, their blocks, device credentials) would make label values unbounded.
_USER_SEGMENT = re.compile(r"/(users|user-blocks|device-credentials)/[^/]+")


# No `_created` twin for every counter: nothing reads them, and they double the series.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "resetrelay_requests",
            "Inbound events by type and outcome",
            ["type", "outcome"],
            registry=r,
        )
        self.answers = Counter(
            "resetrelay_answers",
            "HTTP answers by route and status (every one, errors included)",
            ["route", "status"],
            registry=r,
        )
        self.tickets = Counter(
            "resetrelay_tickets", "Tickets issued/used/expired/voided", ["event"], registry=r
        )
        self.mails = Counter(
            "resetrelay_mails",
            "Outbox mails queued/sent/retried/dead/expired/voided; unbuildable: dead at"
            " once, no message can be made of it (counted in dead too); bad_address: none"
            " queued, the Auth0 user's address is not exactly one mailbox",
            ["event"],
            registry=r,
        )
        self.courtesy_mails = Counter(
            "resetrelay_courtesy_mails",
            "Courtesy mails (COURTESY_MAILS) by kind (social, unknown) and outcome: queued;"
            " throttled, the inbox had RATE_LIMIT_PER_EMAIL of them already; undeliverable,"
            " an address nobody reads (unknown only)",
            ["kind", "outcome"],
            registry=r,
        )
        self.jobs = Counter(
            "resetrelay_jobs", "Jobs run by kind and outcome", ["kind", "outcome"], registry=r
        )
        self.queue_depth = Gauge("resetrelay_job_queue_depth", "Jobs queued or running", registry=r)
        self.queue_age = Gauge(
            "resetrelay_job_queue_oldest_age_seconds", "Age of the oldest due job", registry=r
        )
        self.jobs_dead = Gauge("resetrelay_jobs_dead", "Jobs that ran out of attempts", registry=r)
        self.auth0_calls = Counter(
            "resetrelay_auth0_calls",
            "Auth0 calls by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.auth0_budget_waits = Counter(
            "resetrelay_auth0_budget_waits",
            "Management API calls held back by the shared request budget",
            ["who"],
            registry=r,
        )
        self.auth0_misconfigured = Counter(
            "resetrelay_auth0_misconfigured",
            "Management API calls refused for a scope the Auth0 application lacks, by scope",
            ["scope"],
            registry=r,
        )
        self.rate_limited = Counter(
            "resetrelay_rate_limit_hits", "Reset requests over a rate limit", ["scope"], registry=r
        )
        self.codes = Counter(
            "resetrelay_code_redeems",
            "Mail code redeems by outcome: redeemed, wrong (or no open ticket), capped (over"
            " CODE_ATTEMPTS_PER_EMAIL), spent (a concurrent redeem won)",
            ["outcome"],
            registry=r,
        )
        self.funnel = Counter(
            "resetrelay_funnel_steps",
            "Resets reaching each funnel step (requested, limited, found, unknown, social,"
            " mailed, opened, completed) by purpose; per day and locale in `resetrelay funnel`",
            ["step", "purpose"],
            registry=r,
        )
        self.log_events = Counter(
            "resetrelay_log_events", "Auth0 log events by type", ["type"], registry=r
        )
        self.log_stream_malformed = Counter(
            "resetrelay_log_stream_malformed",
            "Auth0 log-stream input that could not be read: items skipped (item), and"
            " bodies refused with 400 because nothing in them parsed as JSON (body)",
            ["what"],
            registry=r,
        )
        self.log_events_skipped = Counter(
            "resetrelay_log_events_skipped",
            "Actionable Auth0 log events that led to no user: no user_id and no usable"
            " address (no_user), or no database user of ours at Auth0 (unknown_user)",
            ["type", "reason"],
            registry=r,
        )
        self.mail_resent = Counter(
            "resetrelay_mail_resent",
            "Mails sent again after an earlier send started and its outcome was never"
            " written (a worker died, or the database lost the write): each may have"
            " reached its recipient twice, with one Message-ID",
            registry=r,
        )
        self.breach_checks = Counter(
            "resetrelay_breach_checks",
            "New passwords looked up in known breaches (PWNED_PASSWORDS_URL) by outcome:"
            " clean, breached, or error (no usable answer; PWNED_PASSWORDS_ON_ERROR decided)"
            " with the error's reason (unreachable, timeout, status, garbage, oversized)",
            ["outcome", "reason"],
            registry=r,
        )
        self.retention_deleted = Counter(
            "resetrelay_retention_deleted",
            "Finished rows deleted RETENTION_DAYS after they finished, by table",
            ["table"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def endpoint_of(path: str) -> str:
    """`/api/v2/users/auth0|1/sessions` -> `/api/v2/users/{id}/sessions` (bounded label values)."""
    return _USER_SEGMENT.sub(lambda m: f"/{m.group(1)}/{{id}}", path)


class CountingTransport(httpx.AsyncBaseTransport):
    """Wraps the transport the Auth0 client uses and counts every answer by endpoint."""

    def __init__(self, inner: httpx.AsyncBaseTransport, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        endpoint = endpoint_of(request.url.path)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError:
            self._metrics.auth0_calls.labels(endpoint, "error").inc()
            raise
        self._metrics.auth0_calls.labels(endpoint, str(response.status_code)).inc()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
