"""Every outcome of the flow as the contract's answer: status, body bytes, headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hooks.answers import REPLAYED, render
from resetrelay.reset.outcomes import (
    Accepted,
    Completed,
    Misconfigured,
    Outcome,
    PasswordRejected,
    TicketBusy,
    TicketClosed,
    TicketInvalid,
    TicketOpen,
    UpstreamDown,
)

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("outcome", "status", "body", "headers"),
    [
        (Accepted(), 202, '{"status":"accepted"}', {}),
        (Accepted(replayed=True), 202, '{"status":"accepted"}', REPLAYED),
        (
            TicketOpen(AT, "j***@example.com", "de"),
            200,
            '{"valid":true,"expires_at":"2026-12-01T10:00:00Z",'
            '"email":"j***@example.com","locale":"de"}',
            {},
        ),
        (TicketClosed("used"), 200, '{"valid":false,"reason":"used"}', {}),
        (Completed(), 200, '{"status":"completed"}', {}),
        (
            TicketInvalid("expired"),
            410,
            '{"error":"ticket_invalid","message":"This reset link has expired. '
            'Ask for a new one.","reason":"expired"}',
            {},
        ),
        (
            TicketBusy(),
            409,
            '{"error":"ticket_busy","message":"This reset is already being completed. '
            'Try again in a moment."}',
            {},
        ),
        (
            PasswordRejected("Password is too weak", "strength"),
            422,
            '{"error":"password_rejected","message":"Password is too weak","rule":"strength"}',
            {},
        ),
        (
            PasswordRejected(
                "This password does not meet the password requirements.",
                "strength",
                ({"rule": "min_length", "min": 14, "message": "At least 14 characters"},),
            ),
            422,
            '{"error":"password_rejected","message":"This password does not meet the password '
            'requirements.","rule":"strength","requirements":[{"rule":"min_length","min":14,'
            '"message":"At least 14 characters"}]}',
            {},
        ),
        (
            TicketOpen(AT, "j***@example.com", "de", ({"rule": "max_length", "max_bytes": 72},)),
            200,
            '{"valid":true,"expires_at":"2026-12-01T10:00:00Z","email":"j***@example.com",'
            '"locale":"de","policy":{"requirements":[{"rule":"max_length","max_bytes":72}]}}',
            {},
        ),
        (
            UpstreamDown(2.6),
            503,
            '{"error":"upstream_unavailable","message":"The account service is unavailable; '
            'the link still works. Try again shortly."}',
            {"retry-after": "3"},
        ),
        (
            Misconfigured("auth0_scope"),
            503,
            '{"error":"service_misconfigured","message":"The account service is not set up '
            'correctly; the link still works.","reason":"auth0_scope"}',
            {"retry-after": "300"},
        ),
    ],
)
def test_render(outcome: Outcome, status: int, body: str, headers: dict[str, str]) -> None:
    rendered = render(outcome)
    assert (rendered.answer.status, rendered.answer.body, rendered.headers) == (
        status,
        body,
        headers,
    )


def test_only_transient_outcomes_are_not_final() -> None:
    assert not TicketBusy.final and not UpstreamDown.final
    assert not Misconfigured.final  # once the operator fixed it, a resend gets a fresh try
    assert all(kind.final for kind in (Accepted, TicketOpen, TicketClosed, Completed))
    assert TicketInvalid.final and PasswordRejected.final


def test_retry_after_is_at_least_a_second() -> None:
    assert render(UpstreamDown(0.0)).headers == {"retry-after": "1"}
