"""One name for a job's state in every listing: ``status``, as the job itself says it.
Parameters the job list does not know are refused, not silently ignored."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from .conftest import DATA
from .inproc_server import served_app
from .queue_helpers import Site, open_service, run, submit
from .test_serve import CESAR


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> httpx.Client:
    root = tmp_path_factory.mktemp("listing")
    ids = submit(Site.local(root), 2, DATA / "speech_en.wav")

    async def cancel_first() -> None:
        service = await open_service(root)
        await service.cancel(ids[0])
        await service.close()

    run(cancel_first())
    with served_app(root) as url, httpx.Client(base_url=url) as client:
        yield client  # type: ignore[misc]


def test_status_filters_the_list(api: httpx.Client) -> None:
    queued = api.get("/jobs", params={"status": "queued"}).json()["jobs"]
    cancelled = api.get("/jobs", params={"status": "cancelled"}).json()["jobs"]
    assert [job["status"] for job in queued] == ["queued"]
    assert [job["status"] for job in cancelled] == ["cancelled"]


@pytest.mark.parametrize(
    "query", [{"state": "queued"}, {"limt": "1"}, {"status": "queued", "x": ""}]
)
def test_an_unknown_parameter_is_refused(api: httpx.Client, query: dict[str, str]) -> None:
    answer = api.get("/jobs", params=query)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unknown_parameter"
    unknown = next(name for name in query if name not in ("status", "limit", "cursor"))
    assert error["field"] == unknown
    assert unknown in error["message"]
    assert "status" in error["hint"]


def test_the_cli_says_status_too(tmp_path: Path) -> None:
    site = Site.local(tmp_path)
    submit(site, 1, DATA / "speech_en.wav")
    env = {**os.environ, "CESAR_STORE": site.store}
    for option in ("--status", "--state"):  # --state: the name it had before
        listed = subprocess.run(
            [*CESAR, "jobs", "list", option, "queued"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        assert " queued " in listed.stdout
