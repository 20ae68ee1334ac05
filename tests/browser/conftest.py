"""Fixtures for the browser tests: one headless Chromium per module, a fresh context
per test, and screenshots that land in test-artifacts/browser/ when a test fails.

Every test that takes `shots` photographs its steps into a temporary folder as it
goes. When the test fails, the steps and a last picture of every open page are
copied to test-artifacts/browser/<test>/ and the report names that folder.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from devkit.browser import ROOT, ChromiumMissing, launch_chromium

ARTIFACTS = ROOT / "test-artifacts" / "browser"
STEP_TIMEOUT_MS = 10_000  # one click, page load or expectation; fails fast, not at 30 s

expect.set_options(timeout=STEP_TIMEOUT_MS)


class Shots:
    """Numbered screenshots of one test's steps, kept only when the test fails."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.contexts: list[BrowserContext] = []
        self._count = 0

    def take(self, page: Page, step: str, *, full_page: bool = True) -> Path:
        self._count += 1
        path = self.folder / f"{self._count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    def keep(self) -> Path:
        """Copy every step, plus each open page as it is now, to test-artifacts/."""
        for context in self.contexts:
            for index, page in enumerate(context.pages):
                if page.is_closed():
                    continue
                try:
                    page.screenshot(
                        path=str(self.folder / f"99-at-failure-{index}.png"),
                        full_page=True,
                        timeout=5_000,
                    )
                except PlaywrightError:  # a page that cannot be photographed adds nothing
                    continue
        target = ARTIFACTS / self.name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.folder, target)
        return target


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    shots = getattr(item, "funcargs", {}).get("shots")
    if report.when == "call" and report.failed and isinstance(shots, Shots):
        # Still inside the test's lifetime: its pages are open for one last picture.
        folder = shots.keep()
        report.sections.append(("browser screenshots", f"saved in {folder}"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: while Playwright's sync API is open, asyncio sees a
    # running loop in this thread, which breaks every async test that runs after it.
    with sync_playwright() as playwright:
        missing = None
        try:
            chromium = launch_chromium(playwright)
        except ChromiumMissing as exc:
            missing = str(exc)
        if missing is not None:  # failed outside `except`: one message, not a chain of two
            pytest.fail(missing, pytrace=False)
        yield chromium
        chromium.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Shots:
    test = request.node.nodeid.removeprefix("tests/browser/")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_")
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return Shots(folder, name)


@pytest.fixture
def context(browser: Browser, shots: Shots) -> Iterator[BrowserContext]:
    """A fresh browser profile: English, a laptop-sized window, short step timeouts."""
    context = browser.new_context(locale="en-US", viewport={"width": 1000, "height": 800})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    shots.contexts.append(context)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
