"""identity.users.Auth0User.from_json: the Management API's user JSON, read defensively."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from identity.users import Auth0User

OURS = "Username-Password-Authentication"


def user(**fields: Any) -> dict[str, Any]:
    return {"user_id": "auth0|jane", "email": "jane@example.com", **fields}


def db(connection: Any = OURS, **extra: Any) -> dict[str, Any]:
    return {"provider": "auth0", "connection": connection, "isSocial": False, **extra}


def test_a_database_user_in_our_connection() -> None:
    found = Auth0User.from_json(
        user(
            email_verified=True, identities=[{"provider": "google-oauth2", "isSocial": True}, db()]
        ),
        OURS,
    )
    assert found == Auth0User(
        user_id="auth0|jane",
        email="jane@example.com",
        email_verified=True,
        connection=OURS,
        is_database_user=True,
        locale=None,
        last_password_reset=None,
        providers=("google-oauth2", "auth0"),
    )
    assert found.has_password


def test_a_database_identity_elsewhere_is_reported_but_not_ours() -> None:
    found = Auth0User.from_json(user(identities=[db("Staff-Database")]), OURS)
    assert (found.connection, found.is_database_user) == ("Staff-Database", False)
    both = Auth0User.from_json(user(identities=[db("Staff-Database"), db()]), OURS)
    assert (both.connection, both.is_database_user) == (OURS, True)


@pytest.mark.parametrize(
    "identities",
    [None, [], "nonsense", [{"provider": "auth0", "isSocial": True, "connection": OURS}],
     [{"provider": "github", "connection": "github"}], [db(connection=42)]],
)  # fmt: skip
def test_no_usable_database_identity(identities: Any) -> None:
    found = Auth0User.from_json(user(identities=identities), OURS)
    assert found.connection is None
    assert not found.is_database_user


@pytest.mark.parametrize(
    ("identities", "providers", "has_password"),
    [
        ([{"provider": "google-oauth2", "isSocial": True}], ("google-oauth2",), False),
        ([{"provider": "apple"}, {"provider": "github"}, {"provider": "apple"}],
         ("apple", "github"), False),
        ([{"provider": "github"}, db("Staff-Database")], ("github", "auth0"), True),
        ([{"provider": 7}, {"provider": ""}, {"provider": "x" * 65}, "junk", None], (), False),
        (None, (), False),
        ("nonsense", (), False),
    ],
)  # fmt: skip
def test_providers_each_once_in_auth0s_order(
    identities: Any, providers: tuple[str, ...], has_password: bool
) -> None:
    found = Auth0User.from_json(user(identities=identities), OURS)
    assert (found.providers, found.has_password) == (providers, has_password)


@pytest.mark.parametrize("verified", ["true", 1, None])
def test_only_a_real_true_is_verified(verified: Any) -> None:
    assert not Auth0User.from_json(user(email_verified=verified), OURS).email_verified


def test_missing_fields_become_empty() -> None:
    found = Auth0User.from_json({"user_id": None}, OURS)
    assert (found.user_id, found.email, found.locale) == ("", "", None)


@pytest.mark.parametrize(
    ("data", "locale"),
    [
        ({"locale": "fr", "user_metadata": {"language": "de", "locale": " pt-BR "}}, "pt-BR"),
        ({"locale": "fr", "user_metadata": {"language": "de"}}, "de"),
        ({"locale": "fr", "user_metadata": "not a dict"}, "fr"),
        ({"locale": "fr", "user_metadata": {"locale": "  ", "language": 7}}, "fr"),
        ({"locale": "x" * 36}, None),
    ],
)
def test_locale_prefers_metadata(data: dict[str, Any], locale: str | None) -> None:
    assert Auth0User.from_json(user(**data), OURS).locale == locale


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("2024-03-01T10:20:30.123Z", datetime(2024, 3, 1, 10, 20, 30, 123000, tzinfo=UTC)),
        ("2024-03-01T10:20:30", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-01T12:20:30+02:00", datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)),
        ("yesterday", None),
        (1709288430, None),
    ],
)
def test_last_password_reset(value: Any, parsed: datetime | None) -> None:
    found = Auth0User.from_json(user(last_password_reset=value), OURS)
    assert found.last_password_reset == parsed  # an aware value never equals a naive one


@pytest.mark.parametrize(
    ("value", "parsed"),
    [({"resetrelay_claim": "c1", "plan": "x"}, {"resetrelay_claim": "c1", "plan": "x"}),
     (None, {}), ("not a dict", {}), ([1], {})],
)  # fmt: skip
def test_app_metadata(value: Any, parsed: dict[str, Any]) -> None:
    assert Auth0User.from_json(user(app_metadata=value), OURS).app_metadata == parsed


# -- the address is kept as Auth0 has it; resetrelay.reset.requests.recipient decides
# whether it may be a recipient (tests/resetrelay/reset/test_requests.py).


@pytest.mark.parametrize("email", ["a@x.example, evil@y.example", "Name <evil@y.example>"])
def test_the_address_is_kept_as_auth0_has_it(email: str) -> None:
    found = Auth0User.from_json(user(email=email, identities=[db()]), OURS)
    assert found.email == email  # kept as Auth0 has it, for what is not a recipient
