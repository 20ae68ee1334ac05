"""The settings reference, made from `settings.VARIABLES`: the table in
docs/settings.md (`python -m resetrelay.reference > docs/settings.md`; a test
fails when the file drifts) and the report of `resetrelay config`."""

from __future__ import annotations

from collections.abc import Mapping

from resetrelay.settings import MAIL, PREVIEW, VARIABLES, WEB, WORKER, Settings, SettingsError

_ROLE_NAMES = {WEB: "web", WORKER: "worker", MAIL: "send-test-mail", PREVIEW: "preview"}
_ORDER = (WEB, WORKER, MAIL, PREVIEW)

HEADER = """# Settings

Every setting is an environment variable (12-factor). A process checks only the
settings it uses, and names every missing or malformed one at start, one line
each, before it exits with status 2. `resetrelay config` prints this table with
the values of the current environment (secrets masked) and what is missing.

"Required by" names the processes that need a value: `web` is `resetrelay serve`,
`worker` is `resetrelay worker` and also `serve` with `INLINE_WORKER=true` (the
default). `resetrelay migrate` needs only `DATABASE_URL` (which has a default).
A worker also needs `WEBHOOK_SECRET` when `WEBSITE_EVENTS_URL` is set: it signs the
events it sends.

This file is generated from `resetrelay/settings.py`:
`python -m resetrelay.reference > docs/settings.md`.

"""


def _required(roles: frozenset[str]) -> str:
    return ", ".join(_ROLE_NAMES[r] for r in _ORDER if r in roles)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    rows = [
        "| variable | required by | default | meaning | example |",
        "|---|---|---|---|---|",
    ]
    for v in VARIABLES:
        default = f"`{v.default}`" if v.default else ""
        example = f"`{v.example}`" if v.example and not v.example.startswith("(") else v.example
        secret = " (secret)" if v.secret else ""
        rows.append(
            f"| `{v.name}`{secret} | {_required(v.roles)} | {_cell(default)} "
            f"| {_cell(v.meaning)} | {_cell(example)} |"
        )
    return HEADER + "\n".join(rows) + "\n"


def _shown(value: str, secret: bool) -> str:
    if not value:
        return "-"
    if secret:
        return f"set ({len(value)} characters, hidden)"
    return value if len(value) <= 60 else value[:57] + "..."


def config_report(env: Mapping[str, str]) -> tuple[str, bool]:
    """Every setting with its value in `env`, and the problems a deployment of web and
    worker processes would have; True when there are none."""
    width = max(len(v.name) for v in VARIABLES)
    lines = [f"{'variable':<{width}}  {'required by':<28}  value here (or default)"]
    for v in VARIABLES:
        value = env.get(v.name, "").strip()
        shown = (
            _shown(value, v.secret) if value else f"(default: {v.default})" if v.default else "-"
        )
        lines.append(f"{v.name:<{width}}  {_required(v.roles) or '-':<28}  {shown}")
    try:
        Settings.from_env(env, roles=(WEB, WORKER))
    except SettingsError as exc:
        lines += ["", "Problems (web and worker processes would not start):"]
        lines += [f"  {problem}" for problem in exc.problems]
        return "\n".join(lines), False
    lines += ["", "No problems: web and worker processes have every setting they need."]
    return "\n".join(lines), True


if __name__ == "__main__":
    print(markdown(), end="")
