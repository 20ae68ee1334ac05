from __future__ import annotations

import pytest

from resetrelay.metrics import Metrics, endpoint_of


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/api/v2/users/auth0%7C1/revoke-access", "/api/v2/users/{id}/revoke-access"),
        ("/api/v2/user-blocks/auth0%7C1", "/api/v2/user-blocks/{id}"),
        # One series per endpoint, not one per refresh token.
        ("/api/v2/device-credentials/dcr_0123456789abcdef", "/api/v2/device-credentials/{id}"),
        ("/api/v2/device-credentials", "/api/v2/device-credentials"),
    ],
)
def test_endpoint_labels_carry_no_ids(path: str, endpoint: str) -> None:
    assert endpoint_of(path) == endpoint


def test_misconfiguration_is_counted_by_scope() -> None:
    metrics = Metrics()
    metrics.auth0_misconfigured.labels("delete:sessions").inc()
    assert b'resetrelay_auth0_misconfigured_total{scope="delete:sessions"} 1.0' in metrics.render()
