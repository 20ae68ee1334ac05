"""Running ASGI apps on real loopback sockets for tests (uvicorn in a thread, or in
the test's own event loop), and the scope of one request for driving an app directly."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import uvicorn

from devkit.ports import HOST, free_port

__all__ = ["HOST", "free_port"]


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 over real HTTP until the block ends; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host=HOST, port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@asynccontextmanager
async def serve_in_loop(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 over real HTTP from the *calling* event loop until the
    block ends; yields its base URL. The app shares the test's loop, so the test can
    use the same Runtime (database engine, worker) that answers the requests."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host=HOST, port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"http://{HOST}:{port}"
        finally:
            server.should_exit = True


def post_scope(
    path: str, headers: list[tuple[bytes, bytes]], *, root: str = "", query: bytes = b""
) -> dict[str, Any]:
    """The ASGI scope of one `POST root + path` from 127.0.0.1, as uvicorn builds it."""
    full = root + path
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": full,
        "raw_path": full.encode(),
        "query_string": query,
        "root_path": root,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
