"""hooks.openapi.document: a well-formed OpenAPI 3 document that lists exactly the
routes (and methods) of hooks.app."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.routing import Route

from hooks.app import create_app
from hooks.openapi import document
from resetrelay import __version__
from resetrelay.settings import Settings

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def doc() -> dict[str, Any]:
    return document()


def test_header_and_json_round_trip(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.")
    assert doc["info"] == {"title": "resetrelay", "version": __version__}
    assert json.loads(json.dumps(doc)) == doc


def test_paths_and_methods_are_those_of_the_app(
    doc: dict[str, Any], settings_for: Callable[..., Settings]
) -> None:
    app = create_app(settings_for())  # no lifespan: the runtime is never built
    routes = {
        r.path: {m.lower() for m in r.methods or ()} - {"head"}
        for r in app.routes
        if isinstance(r, Route)
    }
    documented = {path: set(item) for path, item in doc["paths"].items()}
    assert documented == routes


def test_preview_is_dev_only_and_undocumented(
    doc: dict[str, Any], settings_for: Callable[..., Settings]
) -> None:
    app = create_app(settings_for(DEV_MODE="true"))
    extra = {r.path for r in app.routes if isinstance(r, Route)} - set(doc["paths"])
    assert extra == {"/preview/mail/{template}"}


def test_every_operation_is_well_formed(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    for item in doc["paths"].values():
        for method, operation in item.items():
            assert method in METHODS
            assert operation["summary"]
            assert operation["responses"]
            for status, response in operation["responses"].items():
                assert status.isdigit() and 100 <= int(status) < 600
                assert response["description"]
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema["required"] == ["error", "message"]
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(schemes)
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in {"header", "query", "path", "cookie"}


def test_website_events_are_the_three_reset_steps_and_the_dispute(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/hooks/website"]["post"]["requestBody"]
    variants = body["content"]["application/json"]["schema"]["oneOf"]
    types = [v["properties"]["type"]["const"] for v in variants]
    assert types == [
        "password_reset.requested",
        "password_reset.verify",
        "password_reset.confirm",
        "password_reset.redeem_code",
        "password_reset.dispute",
    ]
    headers = {p["name"] for p in doc["paths"]["/hooks/website"]["post"]["parameters"]}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}


def _website_data(doc: dict[str, Any], type_: str) -> dict[str, Any]:
    variants = doc["paths"]["/hooks/website"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["oneOf"]
    (variant,) = [v for v in variants if v["properties"]["type"]["const"] == type_]
    found: dict[str, Any] = variant
    return found


CONSTRAINTS = ("minLength", "maxLength", "pattern")


@pytest.mark.parametrize(
    ("type_", "model"),
    [
        ("password_reset.requested", "Requested"),
        ("password_reset.verify", "Verify"),
        ("password_reset.confirm", "Confirm"),
    ],
)
def test_website_fields_are_as_strict_as_the_server(
    doc: dict[str, Any], type_: str, model: str
) -> None:
    """Every length and pattern hooks.events enforces is in the document, and
    nothing the server refuses (a number for a string) is allowed by it."""
    from hooks import events

    variant = _website_data(doc, type_)
    data = variant["properties"]["data"]
    source = getattr(events, model).model_json_schema()
    assert data["required"] == source.get("required", [])
    assert set(data["properties"]) == set(source["properties"])
    for name, field in source["properties"].items():
        expected = next(v for v in field.get("anyOf", [field]) if v.get("type") != "null")
        documented = data["properties"][name]
        for key in CONSTRAINTS:
            assert documented.get(key) == expected.get(key), (name, key)
        types = documented["type"] if isinstance(documented["type"], list) else [documented["type"]]
        assert "string" in types and set(types) <= {"string", "null"}, name
        assert ("null" in types) == (name not in data["required"]), name
    timestamp = variant["properties"]["timestamp"]
    assert timestamp["maxLength"] == 64


def test_website_known_limits(doc: dict[str, Any]) -> None:
    requested = _website_data(doc, "password_reset.requested")["properties"]["data"]["properties"]
    assert (requested["email"]["minLength"], requested["email"]["maxLength"]) == (3, 254)
    assert requested["locale"]["maxLength"] == 35 and requested["locale"]["pattern"]
    assert requested["client_ip"]["maxLength"] == 64
    assert requested["user_agent"]["maxLength"] == 1024
    confirm = _website_data(doc, "password_reset.confirm")["properties"]["data"]["properties"]
    assert (confirm["ticket"]["minLength"], confirm["ticket"]["maxLength"]) == (1, 512)
    assert confirm["new_password"]["maxLength"] == 1024
    headers = {p["name"]: p for p in doc["paths"]["/hooks/website"]["post"]["parameters"]}
    assert headers["webhook-id"]["schema"]["pattern"] == "^[\\x21-\\x7e]{1,255}$"


def test_auth0_routes_declare_their_bodies(doc: dict[str, Any]) -> None:
    stream = doc["paths"]["/hooks/auth0"]["post"]["requestBody"]
    assert stream["required"] is True
    assert set(stream["content"]) == {"application/json", "application/x-ndjson"}
    shapes = stream["content"]["application/json"]["schema"]["oneOf"]
    assert {s["type"] for s in shapes} == {"object", "array"}
    item = shapes[0]
    assert item["properties"]["data"]["required"] == ["type"]
    summary = doc["paths"]["/hooks/auth0"]["post"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    assert summary["required"] == ["received", "stored", "duplicates", "ignored", "malformed"]

    action = doc["paths"]["/hooks/auth0/actions"]["post"]["requestBody"]
    schema = action["content"]["application/json"]["schema"]
    assert schema["required"] == ["type", "user"]
    assert schema["properties"]["type"] == {"const": "post_change_password"}
    user_id = schema["properties"]["user"]["properties"]["user_id"]
    assert (user_id["minLength"], user_id["maxLength"]) == (1, 255)


def test_metrics_documents_its_refusals(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/metrics"]["get"]
    assert {"200", "401", "403"} <= set(operation["responses"])
    assert {"metricsToken": []} in operation["security"]


def test_the_password_requirements_are_documented(doc: dict[str, Any]) -> None:
    from resetrelay.reset.wording import SENTENCES

    responses = doc["paths"]["/hooks/website"]["post"]["responses"]
    rejected = responses["422"]["content"]["application/json"]["schema"]["properties"]
    requirement = rejected["requirements"]["items"]
    # Every rule the policy can name (the sentence for an unsized history refusal aside).
    assert set(requirement["properties"]["rule"]["enum"]) == set(SENTENCES) - {"history_any"}
    assert rejected["rule"]["enum"] == [
        "strength",
        "history",
        "dictionary",
        "user_info",
        "breached",
        "unknown",
    ]
    assert rejected["seen"]["enum"] == ["1-9", "10-99", "100-999", "1000+"]
    verified = responses["200"]["content"]["application/json"]["schema"]["oneOf"][0]
    assert verified["properties"]["policy"]["properties"]["requirements"]["items"] == requirement
