"""``cesar jobs``: look at and manage the jobs in a store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from cesar_core import CesarError, Settings, to_dict
from cesar_core.ids import check_job_id
from cesar_core.jobs import Job, JobState
from cesar_core.plugins import get_manager
from cesar_core.service import JobService
from cesar_core.speakers import rename_speakers

from .options import store_option

T = TypeVar("T")


def _job_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Refuse an id no job could have before opening the store (exit status 2)."""
    try:
        return check_job_id(value)
    except CesarError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _with_service(store: str | None, action: Callable[[JobService], Awaitable[T]]) -> T:
    async def run() -> T:
        service = await JobService.open(Settings.load(store=store), get_manager())
        try:
            return await action(service)
        finally:
            await service.close()

    return asyncio.run(run())


def _summary(job: Job) -> str:
    name = job.source.filename or job.source.location
    error = f"  {job.error.code}" if job.error else ""
    return (
        f"{job.id}  {job.state.value:10}  {job.progress:3d}%  "
        f"{job.created_at:%Y-%m-%d %H:%M:%S}  {name}{error}"
    )


@click.group()
def jobs() -> None:
    """List, show, cancel and delete jobs in the store."""


@jobs.command("list")
@store_option
@click.option(
    "--status",
    "--state",
    "state",
    type=click.Choice([s.value for s in JobState]),
    help="Only jobs with this status, as GET /jobs?status= (--state is its former name).",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", help="Continue a listing (printed after a full page).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_jobs(
    store: str | None, state: str | None, limit: int, cursor: str | None, as_json: bool
) -> None:
    """Jobs, newest first."""
    page = _with_service(
        store,
        lambda s: s.list(state=JobState(state) if state else None, limit=limit, cursor=cursor),
    )
    if as_json:
        click.echo(json.dumps({"jobs": to_dict(list(page.jobs)), "next_cursor": page.next_cursor}))
        return
    for job in page.jobs:
        click.echo(_summary(job))
    if page.next_cursor:
        click.echo(f"more: cesar jobs list --cursor {page.next_cursor}", err=True)


@jobs.command()
@store_option
@click.argument("job_id", callback=_job_id)
@click.option("--json", "as_json", is_flag=True, help="Print the whole job as JSON.")
def show(store: str | None, job_id: str, as_json: bool) -> None:
    """One job, with its transcript when completed."""
    job = _with_service(store, lambda s: s.get(job_id))
    if as_json:
        click.echo(json.dumps(to_dict(job), ensure_ascii=False, indent=2))
        return
    click.echo(_summary(job))
    details: dict[str, Any] = {
        "attempts": f"{job.attempts} of {job.max_attempts}",
        "worker": job.lease.worker if job.lease else None,
        "error": f"{job.error.code}: {job.error.message}" if job.error else None,
    }
    for key, value in details.items():
        if value:
            click.echo(f"  {key}: {value}")
    if job.result is not None:
        click.echo(job.result.text)


@jobs.command()
@store_option
@click.argument("job_id", callback=_job_id)
def cancel(store: str | None, job_id: str) -> None:
    """Cancel a queued or running job (a finished job is left as it is)."""
    job = _with_service(store, lambda s: s.cancel(job_id))
    click.echo(f"{job.id} {job.state.value}")


@jobs.command()
@store_option
@click.argument("job_id", callback=_job_id)
def delete(store: str | None, job_id: str) -> None:
    """Delete a job and its files (cancelling it first if it is unfinished)."""
    deleted = _with_service(store, lambda s: s.delete(job_id))
    click.echo(f"{job_id} {'deleted' if deleted else 'was already gone'}")


def _names(_: click.Context, __: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    pairs = [item.partition("=") for item in value]
    bad = [label for label, sign, _ in pairs if not sign or not label]
    if bad:
        raise click.BadParameter(
            f"{bad[0]!r} is not LABEL=NAME; write SPEAKER_00=Alice (or SPEAKER_00= to take "
            "a name back)."
        )
    return {label: name for label, _, name in pairs}


@jobs.command()
@store_option
@click.argument("job_id", callback=_job_id)
@click.argument("names", nargs=-1, required=True, metavar="LABEL=NAME...", callback=_names)
def rename(store: str | None, job_id: str, names: dict[str, str]) -> None:
    """Name a completed job's speakers: cesar jobs rename ID SPEAKER_00=Alice SPEAKER_01=Bob.

    Every format of the transcript shows the names from then on; LABEL= takes a name back.
    """
    job = _with_service(store, lambda s: rename_speakers(s, job_id, names))
    assert job.result is not None  # a renamed job is completed
    for number, speaker in enumerate(job.result.speakers, start=1):
        click.echo(f"{speaker.id}\t{speaker.label(number)}")


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:06.3f}"


@jobs.command()
@store_option
@click.argument("job_id", callback=_job_id)
@click.option("--json", "as_json", is_flag=True, help="Print each event as a line of JSON.")
def watch(store: str | None, job_id: str, as_json: bool) -> None:
    """Follow a job: print its segments as a worker transcribes them, until it ends.

    Status and progress go to standard error, segments to standard output. Exits 0 once
    the job completed, 1 when it failed or was cancelled.
    """

    async def follow(service: JobService) -> dict[str, Any]:
        ending: dict[str, Any] = {}
        async for event in await service.follow(job_id):
            if as_json:
                click.echo(json.dumps({"event": event.event, **event.data}, ensure_ascii=False))
            elif event.event == "segment":
                data = event.data
                speaker = f"{data['speaker']}: " if data.get("speaker") else ""
                span = f"[{_clock(data['start'])} --> {_clock(data['end'])}]"
                click.echo(f"{span} {speaker}{data['text']}")
            elif event.event == "status":
                click.echo(f"{job_id} {event.data['status']}", err=True)
            elif event.event == "progress":
                click.echo(f"{job_id} {event.data['progress']}%", err=True)
            ending = {"event": event.event, **event.data}
        return ending

    ending = _with_service(store, follow)
    if ending.get("event") == "completed":
        if not as_json:
            click.echo(f"{job_id} completed", err=True)
        return
    error = ending.get("error") or {}
    reason = f": {error.get('code')}: {error.get('message')}" if error else ""
    raise click.ClickException(
        f"Job {job_id} ended {ending.get('status', ending.get('event'))}{reason}"
    )
