"""``cesar serve``: the HTTP API under uvicorn, with an embedded worker by default."""

from __future__ import annotations

import errno
import importlib.util
import logging
import signal
import socket

import click

from cesar_core import Settings
from cesar_core.settings import redact

from .logs import configure_logging
from .options import storage_option, store_option

#: The app factory, named by import path so that the CLI does not import the HTTP adapter
#: (they are independent; see the import-linter contracts). It is given the Settings object.
APP_FACTORY = "cesar_http.app:create_app"


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
    settings = Settings.load(  # a bad value fails here, before anything starts
        host=host,
        port=port,
        store=store,
        storage=storage,
        model=model,
        workers=0 if no_worker else workers,
        grace_seconds=grace,
    )
    configure_logging(max(verbose, 1), quiet=False)
    listener = _listen(settings.host, settings.port)  # a busy port fails before the store opens
    banner = (
        f"cesar serve on http://{settings.host}:{settings.port} "
        f"(store {redact(settings.store_url)}, {settings.workers} worker slot(s)); docs at /docs"
    )
    run_app(settings, listener, banner, verbose)


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or a one-line error saying what to do instead."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say TCP,
    # and accepted connections inherit it. Without it every small response waits ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"{host}:{port} is already in use (another cesar serve?). Stop what listens "
                "there, or choose another port with --port or CESAR_PORT."
            ) from None
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}. Check --host and --port "
            "(CESAR_HOST, CESAR_PORT); ports below 1024 need privileges."
        ) from None
    sock.set_inheritable(True)
    return sock


def run_app(settings: Settings, listener: socket.socket, banner: str, verbose: int) -> None:
    """Serve the app on ``listener`` until SIGTERM or Ctrl-C; print ``banner`` once it
    listens, and turn a failed start-up into a one-line error and exit status 1."""
    import uvicorn
    from uvicorn.importer import import_from_string

    app = import_from_string(APP_FACTORY)(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,  # for uvicorn's own log lines: it serves on ``listener``
        port=settings.port,
        log_level="debug" if verbose > 1 else "info" if verbose else "warning",
        timeout_graceful_shutdown=60,
        lifespan="on",
    )
    if verbose < 2:  # the one-line error below says it; -vv keeps uvicorn's traceback
        logging.getLogger("uvicorn.error").addFilter(_StartupFailureLines())

    class Server(uvicorn.Server):
        """uvicorn's server, telling the user once it listens (not before, not if it fails)."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                click.echo(banner, err=True)

    server = Server(config)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler
    # it found; a no-op one lets `cesar serve` exit 0 after a clean shutdown, as a service
    # manager expects. It is put back afterwards, so that nothing can make SIGTERM powerless.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[listener])
    except SystemExit:  # what uvicorn does when the app fails to start
        if server.started:
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        listener.close()
    if not server.started:
        error = getattr(app.state, "startup_error", None)
        raise click.ClickException(
            f"the server could not start: {error}" if error else "the server could not start."
        )


class _StartupFailureLines(logging.Filter):
    """Drop uvicorn's traceback and its "Application startup failed" line: ``cesar serve``
    reports the failure itself, in one line that says what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not (message.startswith("Traceback") or message.startswith("Application startup"))
