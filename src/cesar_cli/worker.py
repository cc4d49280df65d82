"""``cesar worker``: run queued jobs from a store, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import signal

import click

from cesar_core import Settings, Transcriber
from cesar_core.fetch import FetchPolicy
from cesar_core.plugins import get_manager
from cesar_core.service import JobService
from cesar_core.settings import redact
from cesar_core.transcribers import open_transcriber
from cesar_core.worker import Worker, WorkerConfig

from .logs import configure_logging
from .options import storage_option, store_option


@click.command()
@store_option
@storage_option
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Jobs run at once (each in its own thread, sharing the model).",
)
@click.option(
    "--lease",
    "lease_seconds",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds a job stays claimed without a heartbeat.",
)
@click.option(
    "--grace",
    "grace_seconds",
    type=click.FloatRange(min=0),
    help="On SIGTERM, seconds running jobs may go on before being handed back to the queue. "
    "[CESAR_GRACE_SECONDS; default: 30]",
)
@click.option(
    "--transcriber",
    metavar="NAME",
    help="The transcriber to run jobs with, by the name a plugin gives it "
    "(see `cesar plugins`). Default: CESAR_TRANSCRIBER, else whisper.",
)
@click.option("--name", help="Worker name shown on its jobs. Default: host:pid:random.")
@click.option("-v", "--verbose", count=True, help="Log each job (-vv for debug).")
def worker(
    store: str | None,
    storage: str | None,
    concurrency: int,
    lease_seconds: float,
    grace_seconds: float | None,
    transcriber: str | None,
    name: str | None,
    verbose: int,
) -> None:
    """Run queued transcription jobs until stopped.

    Any number of workers may share one store: each job runs once, a worker that dies
    loses its jobs to the others after its lease, and SIGTERM lets running jobs finish
    (for --grace seconds) before handing them back.
    """
    configure_logging(max(verbose, 1), quiet=False)
    settings = Settings.load(
        store=store, storage=storage, transcriber=transcriber, grace_seconds=grace_seconds
    )
    # an unknown name fails before anything starts
    engine = open_transcriber(settings, get_manager())
    config = WorkerConfig(
        concurrency=concurrency,
        lease_seconds=lease_seconds,
        heartbeat_seconds=max(0.5, lease_seconds / 6),
        grace_seconds=settings.grace_seconds,
        retention_hours=settings.retention_hours,
        pack_max_clips=settings.pack_max_clips,
        pack_wait_seconds=settings.pack_wait_ms / 1000,
    )
    asyncio.run(_run(settings, engine, config, name))


async def _run(
    settings: Settings, engine: Transcriber, config: WorkerConfig, name: str | None
) -> None:
    service = await JobService.open(settings, get_manager())
    runner = Worker(
        service.store,
        service.storage,
        engine,
        config,
        name=name,
        fetch=FetchPolicy.from_settings(settings),
        events=service.events,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.request_stop)
    click.echo(f"worker {runner.name} on {redact(settings.store_url)}; stop with Ctrl-C", err=True)
    try:
        await runner.run()
    finally:
        await service.close()
    click.echo(f"worker {runner.name} stopped after {runner.completed} job(s)", err=True)
