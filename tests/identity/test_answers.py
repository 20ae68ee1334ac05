"""Reading Auth0's answers and users, without HTTP round trips."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from identity.answers import (
    error_fields,
    missing_scopes,
    password_rule,
    policy_text,
    requested_wait,
)
from identity.users import Auth0User

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "Fri, 15 Jan 2027 08:00:30 GMT"}, 30.0),
        ({"retry-after": "soon"}, None),
        ({"x-ratelimit-reset": str(int(NOW) + 4)}, 4.0),
        ({"x-ratelimit-reset": str(int(NOW) - 4)}, 0.0),  # already passed
        ({"x-ratelimit-reset": "nan"}, None),
        ({"retry-after": "2", "x-ratelimit-reset": str(int(NOW) + 9)}, 9.0),
    ],
)
def test_requested_wait(headers: dict[str, str], wait: float | None) -> None:
    assert requested_wait(httpx.Headers(headers), NOW) == wait


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"errorCode": "a", "error": "b", "code": "c", "message": "m"}, ("a", "m")),
        ({"error": "b", "code": "c", "message": "m"}, ("b", "m")),
        ({"code": "c"}, ("c", "")),
        ({"error": "access_denied", "error_description": "Nope"}, ("access_denied", "Nope")),
        (["no"], ("", "")),
    ],
)  # fmt: skip
def test_error_fields(body: object, fields: tuple[str, str]) -> None:
    assert error_fields(httpx.Response(400, json=body)) == fields


def test_error_fields_of_text() -> None:
    assert error_fields(httpx.Response(502, text="Bad gateway")) == ("", "Bad gateway")


def test_password_rule_and_text() -> None:
    assert password_rule("", "PasswordStrengthError: Password is too weak") == "strength"
    assert password_rule("", "Invalid connection") is None
    assert policy_text("PasswordHistoryError: Password has previously been used") == (
        "Password has previously been used"
    )
    assert policy_text("PasswordStrengthError:") == "Password rejected"


def test_user_from_json_edge_cases() -> None:
    user = Auth0User.from_json(
        {
            "user_id": "auth0|x",
            "email": "x@example.com",
            "email_verified": "yes",  # not a boolean: not verified
            "identities": [{"provider": "auth0", "connection": "Other"}, "junk"],
            "user_metadata": {"language": "pt-BR"},
            "locale": "en",
            "last_password_reset": "2027-01-15T08:00:00.000",
        },
        "Username-Password-Authentication",
    )
    assert not user.email_verified
    assert (user.connection, user.is_database_user) == ("Other", False)
    assert user.locale == "pt-BR"
    assert user.last_password_reset == datetime(2027, 1, 15, 8, tzinfo=UTC)


def test_user_from_json_minimal() -> None:
    user = Auth0User.from_json({"user_metadata": None, "locale": "x" * 50}, "db")
    assert (user.user_id, user.email, user.connection, user.locale) == ("", "", None, None)
    assert user.last_password_reset is None


@pytest.mark.parametrize(
    "message",
    [
        "Cannot change email or password for users in a disabled connection.",
        "Password does not meet the policy",
        "Cannot update password and email_verified simultaneously",
    ],
)
def test_only_the_four_policy_errors_are_rules(message: str) -> None:
    assert password_rule("", message) is None


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            403,
            {"statusCode": 403, "error": "Forbidden", "errorCode": "insufficient_scope",
             "message": "Insufficient scope, expected any of: delete:sessions"},
            ("delete:sessions",),
        ),
        (
            403,
            {"message": "Insufficient scope, expected any of: read:users, update:users"},
            ("read:users", "update:users"),
        ),
        (403, {"errorCode": "insufficient_scope", "message": "Forbidden"}, ()),
        (403, {"statusCode": 403, "message": "This feature is not available"}, None),
        (403, {"message": "Operation not allowed"}, None),
        (400, {"errorCode": "insufficient_scope", "message": "Insufficient scope"}, None),
    ],
)  # fmt: skip
def test_missing_scopes(status: int, body: dict[str, object], expected: object) -> None:
    assert missing_scopes(httpx.Response(status, json=body)) == expected
