"""The README's shell examples run as written against `resetrelay demo` (what
`make run` starts), on a fresh clone: only the ports are the test's own."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx

from devkit.browser import run_demo

ROOT = Path(__file__).resolve().parent.parent


def _shell_blocks(text: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    # `make run` and `make test` are what CI itself runs; the rest runs here.
    return [block for block in blocks if not re.search(r"^make ", block, flags=re.MULTILINE)]


def test_the_readme_has_examples_to_run() -> None:
    assert _shell_blocks((ROOT / "README.md").read_text())


def test_readme_examples_run_verbatim_against_the_demo(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # "in the clone"
    with run_demo() as demo:
        deadline = time.monotonic() + 10
        while "export WEBHOOK_SECRET=" not in demo.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        export = re.search(r"^\s*(export WEBHOOK_SECRET='whsec_[^']+')$", demo.output(), re.M)
        assert export, demo.output()
        port = httpx.URL(demo.urls.service).port
        for block in _shell_blocks((ROOT / "README.md").read_text()):
            script = export.group(1) + "\n" + block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            for expected in re.findall(r"^# (\{.*\})$", block, flags=re.MULTILINE):
                assert expected in result.stdout, (expected, result.stdout, result.stderr)
