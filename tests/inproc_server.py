"""The HTTP app served by a real uvicorn on a loopback port, inside the test process, so
that a test can read the server's log records (``caplog``) and its settings are the test's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from cesar_core import Settings
from cesar_http.app import create_app

from .http_helpers import free_port


@contextmanager
def served_app(root: Path, **settings: Any) -> Iterator[str]:
    """Serve ``create_app`` with settings for ``root`` (no worker unless given) until the
    block ends; yields the base URL."""
    values: dict[str, Any] = {"data_dir": root, "workers": 0, **settings}
    app = create_app(Settings.load(**values))
    port = free_port()
    # log_config=None: uvicorn's records reach the root logger, where ``caplog`` reads them.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the in-process server did not start")
        time.sleep(0.02)
    try:
        assert httpx.get(f"{url}/health").status_code == 200
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)
