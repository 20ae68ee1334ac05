from __future__ import annotations

import pytest

from resetrelay.audit import Operator, Subjects
from tests.conftest import SECRET_KEY


def test_subjects_are_keyed_pseudonyms_that_hold_no_address() -> None:
    subjects = Subjects(SECRET_KEY)
    subject = subjects.email("Jane.Doe@Example.com")
    assert subject == subjects.email(" jane.doe@example.com ")
    assert "jane" not in subject and "example" not in subject
    assert subject != Subjects("another-secret-key-0123456789-abcdefgh").email(
        "jane.doe@example.com"
    )
    assert subjects.user("auth0|1") != subjects.user("auth0|2")
    assert subjects.user("auth0|1").startswith("user:")


def test_operator_names_the_login_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESETRELAY_OPERATOR", "ana@support")
    assert Operator.current().actor == "ana@support"
    monkeypatch.delenv("RESETRELAY_OPERATOR")
    assert Operator.current().actor
    assert Operator.current().host
