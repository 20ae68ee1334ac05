"""A breached password in a real browser, against `resetrelay demo` as `make run` starts
it (with its local range API, no internet): the forgot form → the link → a password
known breaches hold, refused with its message and rule → the form still there, and
the link still good for a password of one's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from devkit.browser import DEMO_EMAIL, NEW_PASSWORD, Demo, run_demo
from devkit.demo import BREACHED_EXAMPLES
from tests.browser.conftest import Shots
from tests.browser.test_demo import reset_mail_to

pytestmark = pytest.mark.browser

BREACHED = BREACHED_EXAMPLES[-1]  # "Summer2024!": meets the demo tenant's policy


@pytest.fixture
def demo() -> Iterator[Demo]:
    with run_demo() as running:
        yield running


def test_a_breached_password_is_refused_and_the_form_stays(
    demo: Demo, page: Page, shots: Shots
) -> None:
    site = demo.urls.website
    page.goto(f"{site}/forgot")
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    mail = demo.wait_for_mail(reset_mail_to(DEMO_EMAIL), "reset mail")
    link = next(u for u in mail["links"] if "/account/reset?ticket=" in u)

    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.locator("#password").fill(BREACHED)
    page.locator("#password_confirm").fill(BREACHED)
    page.get_by_role("button", name="Set new password").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("appeared in a known data breach")
    expect(alert.locator("[data-rule]")).to_have_attribute("data-rule", "breached")
    expect(alert.locator('[data-missed="breached"]')).to_have_text(
        "Not a password found in known data breaches"
    )
    expect(page.get_by_role("button", name="Set new password")).to_be_visible()
    shots.take(page, "breached")

    # The range API saw the hash's first 5 hex digits only.
    prefix = hashlib.sha1(BREACHED.encode()).hexdigest().upper()[:5]
    received = httpx.get(f"{demo.urls.pwned}/__pwned/requests", timeout=5).json()["requests"]
    assert [(r["path"], r["padding"]) for r in received] == [(f"/range/{prefix}", True)]

    # The link still works: a password of one's own goes through.
    page.locator("#password").fill(NEW_PASSWORD)
    page.locator("#password_confirm").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("heading", name="Your password has been changed")).to_be_visible()
