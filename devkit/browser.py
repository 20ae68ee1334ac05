"""What the browser tests and `scripts/screenshots.py` share: Debian's Chromium, a
running `resetrelay demo`, and the brand the demo puts on its mail.

Chromium is always Debian's (`scripts/ensure-browser` installs it); Playwright
drives it and never downloads a browser of its own. The demo runs as a real
subprocess (`python -m resetrelay demo`) on free loopback ports, exactly as
`make run` starts it, and is stopped with SIGTERM (then SIGKILL) when done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import httpx
from playwright.sync_api import Browser, Playwright

from devkit.ports import HOST, free_port
from mail.render import Brand

ROOT: Final = Path(__file__).resolve().parents[1]
CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# What `resetrelay demo` brands its mail with (devkit/demo.py, demo_env).
DEMO_BRAND: Final = Brand(
    name="Acme", logo_url="", color="#4f46e5", support_email="support@acme.example"
)
DEMO_EMAIL: Final = "jane@example.com"
DEMO_PASSWORD: Final = "Old-Passw0rd!"  # devkit/demo_users.json
NEW_PASSWORD: Final = "Harbor-Lantern-2718"  # 3 of 4 classes, not common, nothing of Jane's


class ChromiumMissing(RuntimeError):
    pass


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; a clear error when it is not installed."""
    if not os.access(CHROMIUM, os.X_OK):
        raise ChromiumMissing(
            f"Chromium not found at {CHROMIUM}: run scripts/ensure-browser as root "
            "(it installs Debian's chromium package; never `playwright install`)"
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


@dataclass(frozen=True)
class DemoUrls:
    service: str
    auth0: str
    inbox: str
    website: str
    pwned: str


class DemoFailed(RuntimeError):
    pass


class Demo:
    """`resetrelay demo` in a subprocess; `urls` once it answers on every port."""

    def __init__(self, process: subprocess.Popen[bytes], log: IO[bytes], urls: DemoUrls) -> None:
        self.process = process
        self.urls = urls
        self._log = log

    def output(self) -> str:
        """Everything the demo printed so far (stdout and stderr), for failure messages."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def messages(self) -> list[dict[str, Any]]:
        """The mail catcher's messages, newest first."""
        response = httpx.get(f"{self.urls.inbox}/api/messages", timeout=5)
        response.raise_for_status()
        messages: list[dict[str, Any]] = response.json()
        return messages

    def wait_for_mail(
        self, match: Callable[[dict[str, Any]], bool], what: str, timeout: float = 15
    ) -> dict[str, Any]:
        """The newest caught message that `match`es, polling until `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if match(m)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise DemoFailed(f"no {what} arrived in {timeout:.0f} s\n{self.output()}")
            time.sleep(0.1)


def _wait_until_up(process: subprocess.Popen[bytes], urls: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(urls)
    with httpx.Client(timeout=2) as client:
        while pending:
            if process.poll() is not None:
                raise DemoFailed(f"resetrelay demo exited with status {process.returncode}")
            try:
                if client.get(pending[0]).status_code < 500:
                    pending.pop(0)
                    continue
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise DemoFailed(f"resetrelay demo did not answer {pending[0]} in {timeout:.0f} s")
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the demo stops all four servers cleanly on it
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def run_demo(startup_timeout: float = 30) -> Iterator[Demo]:
    """Start `resetrelay demo` on free ports, wait until every URL answers, stop at exit."""
    names = ("port", "auth0", "inbox", "smtp", "website", "pwned")
    ports = {name: free_port() for name in names}
    urls = DemoUrls(
        service=f"http://{HOST}:{ports['port']}",
        auth0=f"http://{HOST}:{ports['auth0']}",
        inbox=f"http://{HOST}:{ports['inbox']}",
        website=f"http://{HOST}:{ports['website']}",
        pwned=f"http://{HOST}:{ports['pwned']}",
    )
    # The demo takes branding, limits and locale from the environment: keep them its own.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BRAND_", "RATE_LIMIT_", "DEFAULT_LOCALE", "TICKET_TTL"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable,
        "-m",
        "resetrelay",
        "demo",
        f"--port={ports['port']}",
        f"--auth0-port={ports['auth0']}",
        f"--inbox-port={ports['inbox']}",
        f"--smtp-port={ports['smtp']}",
        f"--website-port={ports['website']}",
        f"--pwned-port={ports['pwned']}",
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        demo = Demo(process, log, urls)
        try:
            try:
                _wait_until_up(
                    process,
                    [
                        f"{urls.service}/healthz",
                        f"{urls.auth0}/",
                        f"{urls.inbox}/api/messages",
                        f"{urls.website}/forgot",
                        f"{urls.pwned}/__pwned/requests",
                    ],
                    startup_timeout,
                )
            except DemoFailed as exc:
                raise DemoFailed(f"{exc}\n{demo.output()}") from None
            yield demo
        finally:
            _stop(process)
