"""``cesar serve``: the HTTP API under uvicorn, with an embedded worker by default."""

from __future__ import annotations

import importlib.util
import os
import signal

import click

from cesar_core import Settings
from cesar_core.settings import redact

from .logs import configure_logging
from .options import storage_option, store_option

#: The app factory, named by import path so that the CLI does not import the HTTP adapter.
APP_FACTORY = "cesar_http.app:app_from_environment"


@click.command()
@click.option("--host", help="Address to listen on. [CESAR_HOST; default: 127.0.0.1]")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port to listen on. [CESAR_PORT; default: 8000]"
)
@store_option
@storage_option
@click.option("--model", help="Model for requests that name none. [CESAR_MODEL; default: tiny.en]")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="Jobs the embedded worker runs at once. [CESAR_WORKERS; default: 1]",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    help="On SIGTERM, seconds running jobs may go on before being handed back to the queue. "
    "[CESAR_GRACE_SECONDS; default: 30]",
)
@click.option(
    "--no-worker",
    is_flag=True,
    help="Run no embedded worker: jobs wait for `cesar worker` processes on the same store.",
)
@click.option("-v", "--verbose", count=True, help="Log each request and job (-vv for debug).")
def serve(
    host: str | None,
    port: int | None,
    store: str | None,
    storage: str | None,
    model: str | None,
    workers: int | None,
    grace: float | None,
    no_worker: bool,
    verbose: int,
) -> None:
    """Serve the HTTP API: submit audio, poll jobs, fetch transcripts.

    With no flags it works on a fresh machine: SQLite in the data directory, the default
    offline model, one embedded worker, http://127.0.0.1:8000 (API docs at /docs).
    Set CESAR_API_KEY to require a bearer token. SIGTERM lets running jobs finish (--grace,
    30 s by default), then hands them back to the queue.
    """
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise click.ClickException("The HTTP API needs the http extra: pip install 'cesar[http]'.")
    import uvicorn

    overrides = {
        "CESAR_HOST": host,
        "CESAR_PORT": port,
        "CESAR_STORE": store,
        "CESAR_STORAGE": storage,
        "CESAR_MODEL": model,
        "CESAR_WORKERS": 0 if no_worker else workers,
        "CESAR_GRACE_SECONDS": grace,
    }
    # The app builds its settings from the environment, in the server process.
    os.environ.update({name: str(value) for name, value in overrides.items() if value is not None})
    settings = Settings.load()  # a bad value fails here, before the server starts
    configure_logging(max(verbose, 1), quiet=False)
    click.echo(
        f"cesar serve on http://{settings.host}:{settings.port} "
        f"(store {redact(settings.store_url)}, {settings.workers} worker slot(s)); docs at /docs",
        err=True,
    )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler
    # it found; a no-op one lets `cesar serve` exit 0 after a clean shutdown, as a service
    # manager expects.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level="debug" if verbose > 1 else "info" if verbose else "warning",
        timeout_graceful_shutdown=60,
    )
