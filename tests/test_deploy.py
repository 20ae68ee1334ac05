"""The deployment files, used as a platform uses them.

The Procfile's process types are started the way Heroku (or Dokku) starts them:
PORT set, DATABASE_URL from the database add-on (`postgres://` when
TEST_DATABASE_URL names a PostgreSQL server, in a fresh database of this test's
own; SQLite otherwise), the settings app.json asks for (required ones filled,
`"generator": "secret"` ones generated). `release` runs first, then `web` and
`worker` side by side; on SIGTERM, which the platform sends to every process of
a dyno, each must finish within 25 s (Heroku kills 30 s after it).

requirements.txt is what the buildpack and the Dockerfile install: the checks
here need no network (`make requirements-check` runs them; `make requirements`
regenerates the file).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from sqlalchemy import create_engine, make_url, text

from resetrelay.settings import VARIABLES, WEB, WORKER, needs, normalise_database_url
from resetrelay.webhooks import new_secret
from storage.migrate import sync_url
from tests.conftest import BACKENDS, PG_URL
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
# The console script `resetrelay` sits next to the interpreter that runs the tests.
BIN = Path(sys.executable).parent
STOP_WITHIN = 25.0


def procfile() -> dict[str, str]:
    types = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            types[name.strip()] = command.strip()
    return types


def app_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "app.json").read_text())
    return data


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


# ---------------------------------------------------------------------------
# app.json and the Procfile


def test_app_json_names_every_variable_a_web_or_worker_process_requires() -> None:
    env = app_json()["env"]
    required = needs(WEB, WORKER)
    assert required <= set(env), f"app.json lacks {sorted(required - set(env))}"
    for name in required:
        assert env[name].get("required", True) is True, name
        assert env[name].get("description"), name
    known = {v.name for v in VARIABLES}
    assert set(env) <= known, f"app.json names unknown settings {sorted(set(env) - known)}"
    # A random value is right for the server key, but a webhook secret must be
    # whsec_<base64> and shared with the website: the form says how to make one.
    assert env["SECRET_KEY"]["generator"] == "secret"
    assert "generator" not in env["WEBHOOK_SECRET"]
    assert "resetrelay secret" in env["WEBHOOK_SECRET"]["description"]


def test_app_json_runs_the_procfile_processes_on_postgresql() -> None:
    app = app_json()
    types = procfile()
    assert types["release"] == "resetrelay migrate"
    assert set(app["formation"]) == set(types) - {"release"} == {"web", "worker"}
    plans = [a if isinstance(a, str) else a["plan"] for a in app["addons"]]
    assert [p for p in plans if p.split(":")[0] == "heroku-postgresql"], plans
    assert len(app["name"]) <= 30 and len(app["description"]) <= 140


# ---------------------------------------------------------------------------
# The processes, as the platform starts them


def command_line(command: str) -> tuple[dict[str, str], list[str]]:
    """A Procfile command as the shell would run it: leading NAME=value words are
    the command's environment, the rest its argv (only simple commands are used)."""
    assert not re.search(r"[;&|<>`$(){}]", command), f"not a simple command: {command}"
    words = shlex.split(command)
    env = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def platform_env(database_url: str) -> dict[str, str]:
    """What a dyno sees: the add-on's DATABASE_URL, PORT, and app.json's settings as
    someone filling in the Heroku Button's form would set them."""
    filled = {
        # What the form's descriptions ask for; nothing here leaves this machine.
        "WEBHOOK_SECRET": new_secret(),
        "RESET_URL": "https://www.example.com/account/reset?ticket={ticket}",
        "MAIL_FROM": "Acme <no-reply@acme.example>",
        "BRAND_NAME": "Acme",
        "SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
        "AUTH0_DOMAIN": "acme.eu.auth0.com",
        "AUTH0_CLIENT_ID": "deploy-test-client",
        "AUTH0_CLIENT_SECRET": "deploy-test-client-secret",
    }
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PORT": str(free_port()),
        "DATABASE_URL": database_url,
        # Keep every Auth0 call on loopback (none is expected before a job exists).
        "AUTH0_BASE_URL": f"http://127.0.0.1:{free_port()}",
        # The breach check off: a test never reaches the public range API.
        "PWNED_PASSWORDS_URL": "",
    }
    for name, spec in app_json()["env"].items():
        if isinstance(spec, str):
            env[name] = spec
        elif "value" in spec:
            env[name] = spec["value"]
        elif spec.get("generator") == "secret":
            env[name] = secrets.token_hex(32)  # what Heroku's generator makes: 64 hex digits
        elif spec.get("required", True):
            env[name] = filled[name]
    return env


class Dyno:
    """One Procfile process type, started in a process group of its own (the dyno)."""

    def __init__(self, kind: str, env: dict[str, str], cwd: Path) -> None:
        extra, argv = command_line(procfile()[kind])
        self.kind = kind
        self.process = subprocess.Popen(
            argv,
            env={**env, **extra},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self._output += line

    @property
    def output(self) -> bytes:
        with self._lock:
            return bytes(self._output)

    def wait_for(self, needle: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            assert self.process.poll() is None, f"{self.kind} exited: {self.output!r}"
            assert time.monotonic() < deadline, f"{self.kind} never said {needle!r}"
            time.sleep(0.05)

    def sigterm(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def wait_stopped(self, since: float) -> tuple[int, float]:
        code = self.process.wait(timeout=max(0.1, since + STOP_WITHIN - time.monotonic()))
        self._reader.join(timeout=5)
        return code, time.monotonic() - since

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture(params=BACKENDS)
def addon_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database as the add-on hands it over: `postgres://` for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'resetrelay.db'}"
        return
    admin_url = make_url(sync_url(normalise_database_url(PG_URL)))
    name = f"resetrelay_deploy_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin_url.set(drivername="postgres", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_once(kind: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    extra, argv = command_line(procfile()[kind])
    return subprocess.run(
        argv, env={**env, **extra}, cwd=cwd, capture_output=True, timeout=120, check=False
    )


def test_release_then_web_and_worker_as_the_platform_runs_them(
    addon_database_url: str, tmp_path: Path
) -> None:
    env = platform_env(addon_database_url)

    # Before the release phase the worker refuses the empty database, in one line.
    early = run_once("worker", env, tmp_path)
    assert early.returncode == 1, early.stderr
    assert b"resetrelay migrate" in early.stderr

    release = run_once("release", env, tmp_path)
    assert release.returncode == 0, release.stderr
    assert b"schema is up to date" in release.stdout

    web, worker = Dyno("web", env, tmp_path), Dyno("worker", env, tmp_path)
    try:
        base = f"http://127.0.0.1:{env['PORT']}"
        deadline = time.monotonic() + 30
        while True:
            assert web.process.poll() is None, web.output
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"web never bound {base}: {web.output!r}"
                time.sleep(0.1)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready"}

        worker.wait_for(b'"process":"worker"')
        time.sleep(1)
        assert worker.process.poll() is None, worker.output

        started = time.monotonic()
        web.sigterm()
        worker.sigterm()
        web_code, web_took = web.wait_stopped(started)
        worker_code, worker_took = worker.wait_stopped(started)
    finally:
        web.kill()
        worker.kill()

    # uvicorn shuts down gracefully, then re-raises SIGTERM, as a platform expects.
    assert web_code in (0, -signal.SIGTERM), web.output
    assert b"Application shutdown complete" in web.output
    assert web_took < STOP_WITHIN
    assert worker_code == 0, worker.output
    assert worker_took < STOP_WITHIN
    assert b"Traceback" not in web.output + worker.output


# ---------------------------------------------------------------------------
# requirements.txt and the Python version (offline)


def pinned() -> tuple[dict[str, list[Requirement]], list[str]]:
    """requirements.txt's pins by canonical name, and its non-comment lines."""
    lines = []
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    pins: dict[str, list[Requirement]] = {}
    for line in lines[:-1]:
        requirement = Requirement(line)
        pins.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return pins, lines


def test_requirements_end_with_the_project_itself_and_pin_everything_else() -> None:
    pins, lines = pinned()
    assert lines[-1] == ".", "the last line installs resetrelay itself: `.`"
    assert not [line for line in lines if line.startswith("-")], "no -e or pip options"
    for name, requirements in pins.items():
        for requirement in requirements:
            specs = list(requirement.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", f"{name} is not pinned"


def test_requirements_pin_every_runtime_dependency_of_pyproject() -> None:
    pins, _ = pinned()
    project = pyproject()["project"]
    for line in project["dependencies"]:
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{wanted.name} is in pyproject.toml but not pinned: make requirements"
        for pin in pins[name]:
            version = Version(next(iter(pin.specifier)).version)
            assert version in wanted.specifier, (
                f"{pin} does not satisfy pyproject's {wanted}: make requirements"
            )
        # What the extras pull in (uvicorn[standard], psycopg[binary], ...), read from
        # the installed distribution's metadata, is pinned too.
        for extra in wanted.extras:
            for dep_line in importlib.metadata.requires(wanted.name) or []:
                dep = Requirement(dep_line)
                if dep.marker is None or not dep.marker.evaluate({"extra": extra}):
                    continue
                if dep.marker.evaluate({"extra": ""}):
                    continue  # not the extra's: a dependency of the package itself
                assert canonicalize_name(dep.name) in pins, f"{wanted.name}[{extra}] needs {dep}"
    # Development tools stay out of the deployment.
    runtime = {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}
    extras = project["optional-dependencies"]
    for line in extras["dev"] + extras["demo"]:
        name = canonicalize_name(Requirement(line).name)
        assert name == "resetrelay" or name in runtime or name not in pins, name


def test_python_version_is_one_the_buildpack_and_the_image_use() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.1[1-3]", version), version  # major form: patch releases follow
    assert Version(f"{version}.0") in SpecifierSet(pyproject()["project"]["requires-python"])
    assert f"FROM python:{version}-slim" in (ROOT / "Dockerfile").read_text()
