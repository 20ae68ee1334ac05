"""What the request path's one SQLite statement costs a row, and why.

`python -m bench.sqlite_keys` runs storage.intake's SQLite statement (a CTE's
VALUES, NOT EXISTS, ON CONFLICT, RETURNING) in batches of 32 against a migrated
database in WAL mode, in a plain sqlite3 loop: with scratch tables in files (SQLite's
default) and in memory (ours, storage.writer.TEMP_STORE), and with random webhook
ids (as senders send them) against sequential ones. The random unique index on the
id dirties one page per row, which is most of what remains.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
import uuid

from storage.intake import sqlite_statement
from storage.migrate import upgrade

BATCH, WARM, ROWS = 32, 30_000, 64_000
_NOW = "2026-12-02 01:00:00.000000"


def per_row(temp_store: str, sequential: bool) -> float:
    """µs a row, over ROWS rows after WARM rows already in the table."""
    folder = tempfile.mkdtemp()
    upgrade(f"sqlite:///{folder}/keys.db")
    conn = sqlite3.connect(f"{folder}/keys.db", isolation_level=None)
    pragmas = ("journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=0")
    for pragma in (*pragmas, f"temp_store={temp_store}"):
        conn.execute(f"PRAGMA {pragma}")
    sql, count, spent = sqlite_statement(BATCH), 0, 0.0
    for batch in range((WARM + ROWS) // BATCH):
        params: list[object] = []
        for _ in range(BATCH):
            count += 1
            event_id = f"msg_{count:032d}" if sequential else f"msg_{uuid.uuid4().hex}"
            payload = '{"email":"u@example.com"}'
            params += ("reset.requested", payload, 20, _NOW, _NOW, _NOW, "website:" + event_id)
            params.append(event_id)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(sql, [*params, "website"]).fetchall()
        conn.execute("COMMIT")
        if batch * BATCH >= WARM:
            spent += time.perf_counter() - started
    conn.close()
    return spent / ROWS * 1e6


def main() -> None:
    for temp_store, sequential in (("FILE", False), ("MEMORY", False), ("MEMORY", True)):
        keys = "sequential" if sequential else "random"
        cost = per_row(temp_store, sequential)
        print(f"temp_store={temp_store:6} ids={keys:10} {cost:5.1f} µs a row")


if __name__ == "__main__":
    main()
