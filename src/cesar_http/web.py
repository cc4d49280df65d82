"""The web page at ``/``: drop audio, watch the job, read the transcript beside the audio.

The page is plain HTML, CSS and JavaScript modules shipped inside this package (``web/``),
with no build step and nothing fetched from elsewhere, so it works on a machine with no
internet access. It calls the same public API as any other client; the server only hands
out its files. The files need no API key: they hold no data, and the page asks for the key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

#: Where the page's assets are served from.
ASSETS = "/web"
FILES = Path(__file__).parent / "web"


def add_web(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under :data:`ASSETS`."""

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        # Revalidated on every visit, so an upgraded server's page is not stale.
        return FileResponse(FILES / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount(ASSETS, StaticFiles(directory=FILES), name="web")
