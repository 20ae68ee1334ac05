"""The whole story in a real browser, against `resetrelay demo` run as `make run` runs it.

Forgot form → the branded mail in the catcher's inbox → the link, clicked in the
mail → the tenant's requirements as live hints → a too-short password, refused with
the exact requirement → a good one → signing in with it → the link once more, now
used. Chromium is Debian's, headless; the demo is a subprocess on free ports, so this
test sees exactly what a person trying the demo sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from devkit.browser import (
    DEMO_BRAND,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    NEW_PASSWORD,
    Demo,
    run_demo,
)
from tests.browser.conftest import Shots

pytestmark = pytest.mark.browser

WEAK_PASSWORD = "weakpass"  # 8 characters, one kind: the demo tenant ("good") wants 3 of 4
SHORT_PASSWORD = "Sh0rt!"  # four kinds, 6 characters: only the length is missed
MET = re.compile(r"\bmet\b")


@pytest.fixture
def demo() -> Iterator[Demo]:
    with run_demo() as running:
        yield running


def reset_mail_to(address: str) -> Callable[[dict[str, Any]], bool]:
    def match(message: dict[str, Any]) -> bool:
        links = message["links"]
        return address in message["to"] and any("/account/reset?ticket=" in u for u in links)

    return match


def test_forgot_password_story(
    demo: Demo, context: BrowserContext, page: Page, shots: Shots
) -> None:
    site = demo.urls.website

    # 1. The website's forgot form.
    page.goto(f"{site}/forgot")
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("Email").fill(DEMO_EMAIL)
    shots.take(page, "forgot")
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    shots.take(page, "forgot-sent")

    # 2. The branded mail, as the catcher's inbox shows it.
    mail = demo.wait_for_mail(reset_mail_to(DEMO_EMAIL), "reset mail")
    link = next(u for u in mail["links"] if "/account/reset?ticket=" in u)
    assert link.startswith(f"{site}/account/reset?ticket=")
    assert DEMO_BRAND.name in mail["subject"]
    page.goto(demo.urls.inbox)
    page.get_by_role("link", name=mail["subject"]).click()
    expect(page).to_have_url(f"{demo.urls.inbox}/messages/{mail['id']}")
    expect(page.get_by_role("heading", name=mail["subject"])).to_be_visible()
    body = page.frame_locator("iframe[title='HTML part of the message']")
    expect(body.locator(".rr-brand")).to_have_text(DEMO_BRAND.name)
    button = body.get_by_role("link", name="Choose a new password")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("href", link)
    # The button is the brand's colour (#4f46e5), drawn by the table cell around it.
    expect(body.locator(".rr-button-cell")).to_have_css("background-color", "rgb(79, 70, 229)")
    shots.take(page, "mail")

    # 3. The link, clicked in the mail: a new tab on the website, the ticket out of the URL.
    with context.expect_page() as opened:
        button.click()
    reset = opened.value
    expect(reset.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert "ticket" not in reset.url
    expect(reset.get_by_text("j***@example.com")).to_be_visible()
    shots.take(reset, "reset-form")

    # 4. The tenant's requirements (from verify) as live hints: "weakpass" meets the
    # length, not the three kinds of four.
    hints = reset.locator("#policy")
    length = hints.locator('[data-check="min_length"]')
    kinds = hints.locator('[data-check="character_types"]')
    expect(length).to_have_text("At least 8 characters")
    reset.locator("#password").fill(WEAK_PASSWORD)
    expect(length).to_have_class(MET)
    expect(kinds).not_to_have_class(MET)
    shots.take(reset, "weak-password-hints")

    # A too-short password: refused before Auth0, with exactly the requirement missed.
    reset.locator("#password").fill(SHORT_PASSWORD)
    reset.locator("#password_confirm").fill(SHORT_PASSWORD)
    reset.get_by_role("button", name="Set new password").click()
    alert = reset.get_by_role("alert")
    expect(alert).to_contain_text("does not meet the password requirements")
    missed = alert.locator("[data-missed]")
    expect(missed).to_have_count(1)
    expect(missed).to_have_attribute("data-missed", "min_length")
    expect(missed).to_have_text("At least 8 characters")
    expect(alert.locator("[data-rule]")).to_have_attribute("data-rule", "strength")
    expect(reset.get_by_role("button", name="Set new password")).to_be_visible()
    shots.take(reset, "weak-password")

    # 5. A good password: done.
    reset.locator("#password").fill(NEW_PASSWORD)
    reset.locator("#password_confirm").fill(NEW_PASSWORD)
    reset.get_by_role("button", name="Set new password").click()
    expect(reset.get_by_role("heading", name="Your password has been changed")).to_be_visible()
    shots.take(reset, "reset-done")

    # 6. Signing in: the old password no longer works, the new one does.
    reset.get_by_role("main").get_by_role("link", name="Sign in").click()
    expect(reset.get_by_role("heading", name="Sign in")).to_be_visible()
    reset.get_by_label("Email").fill(DEMO_EMAIL)
    reset.get_by_label("Password").fill(DEMO_PASSWORD)
    reset.get_by_role("button", name="Sign in").click()
    expect(reset.get_by_role("alert")).to_be_visible()
    expect(reset.get_by_role("heading", name="Signed in")).to_have_count(0)
    reset.get_by_label("Email").fill(DEMO_EMAIL)
    reset.get_by_label("Password").fill(NEW_PASSWORD)
    reset.get_by_role("button", name="Sign in").click()
    expect(reset.get_by_role("status")).to_have_text(f"Signed in as {DEMO_EMAIL}.")
    shots.take(reset, "signed-in")

    # The "changed" mail follows the reset.
    changed = demo.wait_for_mail(
        lambda m: DEMO_EMAIL in m["to"] and "changed" in m["subject"], "password-changed mail"
    )
    assert DEMO_BRAND.name in changed["subject"]

    # 7. The same link again: used.
    reset.goto(link)
    expect(reset.get_by_role("heading", name="This link has already been used")).to_be_visible()
    assert "ticket" not in reset.url
    shots.take(reset, "link-used")
