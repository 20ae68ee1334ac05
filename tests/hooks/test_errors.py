"""hooks.errors: HookError's contract body and response, json_response, the factories."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from hooks import errors
from hooks.errors import HookError, json_response


def test_body_is_code_message_and_extra_fields() -> None:
    error = HookError(409, "ticket_busy", "Try again.", extra={"retry": 3})
    assert error.body() == {"error": "ticket_busy", "message": "Try again.", "retry": 3}
    assert str(error) == "Try again."


def test_response_carries_status_headers_and_compact_json() -> None:
    error = HookError(503, "storage_unavailable", "Later.", headers={"retry-after": "5"})
    response = error.response()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"] == "application/json"
    assert bytes(response.body) == b'{"error":"storage_unavailable","message":"Later."}'


def test_defaults_are_empty_and_not_shared() -> None:
    one, two = HookError(400, "a", "m"), HookError(400, "b", "m")
    assert one.extra == {} and one.headers == {}
    assert one.extra is not two.extra and one.headers is not two.headers


def test_json_response_passes_a_string_body_through() -> None:
    response = json_response(200, '{"already":"encoded"}', headers={"x-a": "1"})
    assert bytes(response.body) == b'{"already":"encoded"}'
    assert response.headers["x-a"] == "1"
    assert response.media_type == "application/json"


def test_json_response_keeps_non_ascii_escaped_and_valid() -> None:
    response = json_response(422, {"message": "Grüße"})
    assert b"Gr\\u00fc\\u00dfe" in bytes(response.body)
    assert json.loads(bytes(response.body)) == {"message": "Grüße"}


@pytest.mark.parametrize(
    ("factory", "status", "code"),
    [
        (lambda: errors.invalid_payload("bad"), 400, "invalid_payload"),
        (errors.invalid_signature, 401, "invalid_signature"),
        (lambda: errors.unauthorized("no"), 401, "unauthorized"),
        (errors.not_configured, 404, "not_found"),
    ],
)
def test_factories_build_fresh_errors(
    factory: Callable[[], HookError], status: int, code: str
) -> None:
    first, second = factory(), factory()
    assert first is not second  # no shared instance carrying another request's traceback
    assert (first.status, first.code) == (status, code)
    assert first.body() == {"error": code, "message": first.message}
