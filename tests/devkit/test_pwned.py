"""The local range API answers as the public one documents: SUFFIX:COUNT rows under the
prefix, CRLF, padding rows of count 0 when asked, 400 for a prefix that is not 5 hex
digits; and it keeps a log of what it received."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from devkit.pwned import DEMO_CORPUS, create_range_api

pytestmark = pytest.mark.anyio


def split(password: str) -> tuple[str, str]:
    digest = hashlib.sha1(password.encode()).hexdigest().upper()
    return digest[:5], digest[5:]


async def test_rows_padding_and_the_request_log() -> None:
    app = create_range_api()
    prefix, suffix = split("Passw0rd!")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://pwned.test"
    ) as client:
        bare = await client.get(f"/range/{prefix}")
        padded = await client.get(f"/range/{prefix.lower()}", headers={"Add-Padding": "true"})
        bad = await client.get("/range/XYZ12")
        log = (await client.get("/__pwned/requests")).json()["requests"]
    assert bare.status_code == 200 and bare.text == f"{suffix}:{DEMO_CORPUS['Passw0rd!']}"
    rows = padded.text.split("\r\n")
    assert 800 <= len(rows) <= 1000
    counts = dict(row.split(":") for row in rows)
    assert counts[suffix] == str(DEMO_CORPUS["Passw0rd!"])
    assert all(len(s) == 35 and c == "0" for s, c in counts.items() if s != suffix)
    assert bad.status_code == 400
    assert [(r["prefix"], r["padding"]) for r in log] == [
        (prefix, False),
        (prefix.lower(), True),
        ("XYZ12", False),
    ]
