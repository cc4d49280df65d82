"""The page's list of jobs in a real browser: paged through the API's cursor, newest first,
turned from the keyboard, and the first page still followed live.

No worker runs, so the jobs stay queued and the test needs no model; the page's ``?limit=3``
keeps the pages short.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from .conftest import DATA
from .http_helpers import serving
from .test_web import CHROMIUM, screenshot, watch

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)"
)
sync_api = pytest.importorskip("playwright.sync_api")

CLIP = (DATA / "short" / "clip_01.opus").read_bytes()


def _submit(api: httpx.Client, name: str) -> str:
    answer = api.post("/transcribe", files={"file": (name, CLIP)})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def test_the_jobs_are_paged_newest_first_and_the_first_page_is_live(tmp_path: Path) -> None:
    """Seven jobs, three a page: Older and Newer (labelled buttons, pressed with Enter and
    Space) walk the cursor's pages; a button that has nothing left to show hands the focus to
    the other; emptying the last page goes back one; on the first page a new job and a
    cancelled one show up through /jobs/events, with no polling."""
    with (
        serving(tmp_path / "data", CESAR_WORKERS="0") as url,
        httpx.Client(base_url=url, timeout=60) as api,
        sync_api.sync_playwright() as pw,
    ):
        ids = {n: _submit(api, f"clip {n}.opus") for n in range(1, 8)}
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 900, "height": 700})
        requested, failures = watch(page)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{url}/?limit=3#/")
        names = page.locator("#jobs li .name")
        older = page.get_by_role("button", name="Older jobs")
        newer = page.get_by_role("button", name="Newer jobs")
        status = page.get_by_role("navigation", name="Pages of jobs").locator("#page-status")

        def shows(*numbers: int) -> None:
            sync_api.expect(names).to_have_text([f"clip {n}.opus" for n in numbers])

        shows(7, 6, 5)
        sync_api.expect(status).to_have_text("Jobs 1 to 3")
        sync_api.expect(newer).to_be_disabled()
        older.focus()
        page.keyboard.press("Enter")
        shows(4, 3, 2)
        sync_api.expect(status).to_have_text("Jobs 4 to 6")
        page.keyboard.press("Space")
        shows(1)
        sync_api.expect(status).to_have_text("Jobs 7 to 7 (the oldest)")
        sync_api.expect(older).to_be_disabled()
        sync_api.expect(newer).to_be_focused()  # not lost to the page's body
        screenshot(page, tmp_path, "last-page")

        row = page.locator("#jobs li", has_text="clip 1.opus")
        row.get_by_role("button", name="Cancel clip 1.opus").click()
        sync_api.expect(row).to_contain_text("cancelled")
        row.get_by_role("button", name="Delete clip 1.opus").click()
        shows(4, 3, 2)  # the emptied page is gone: the one before it shows
        sync_api.expect(older).to_be_disabled()
        newer.focus()
        page.keyboard.press("Enter")
        shows(7, 6, 5)
        sync_api.expect(older).to_be_focused()
        assert any("/jobs?" in u and "cursor=" in u for u in requested)
        assert all("limit=3" in u for u in requested if "/jobs?" in u)

        # The first page, live: a job submitted elsewhere comes first, a cancelled one says so.
        listed = len([u for u in requested if "/jobs?" in u])
        _submit(api, "clip 8.opus")
        shows(8, 7, 6)
        assert api.delete(f"/jobs/{ids[6]}").json()["status"] == "cancelled"
        sync_api.expect(page.locator("#jobs li", has_text="clip 6.opus")).to_contain_text(
            "cancelled"
        )
        reloads = len([u for u in requested if "/jobs?" in u]) - listed
        time.sleep(2.5)  # longer than the polling period: nothing asks again meanwhile
        assert len([u for u in requested if "/jobs?" in u]) - listed == reloads
        assert any(u.startswith(f"{url}/jobs/events?limit=3") for u in requested)
        sizes = page.evaluate(
            """async () => {
              const {pageSize} = await import('./web/jobs.js');
              return ['?limit=5', '?limit=0', '?limit=101', '?limit=x', '?limit=2.5', '']
                .map((query) => pageSize(query));
            }"""
        )
        assert sizes == [5, 20, 20, 20, 20, 20]
        browser.close()
    assert not failures


def test_a_job_whose_event_stream_fails_is_polled_once_at_a_time(tmp_path: Path) -> None:
    """When a job's event stream fails, the page polls the job instead: one request, then one
    a second. The browser reports the failure as an event named "error", the name the server
    also gives a job's failure; taking the one for the other started two polls at once."""
    with (
        serving(tmp_path / "data", CESAR_WORKERS="0") as url,
        httpx.Client(base_url=url) as api,
        sync_api.sync_playwright() as pw,
    ):
        job = _submit(api, "queued.opus")
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        requested, failures = watch(page)
        page.route(f"{url}/jobs/{job}/events", lambda route: route.abort())
        page.goto(f"{url}/#/jobs/{job}")
        sync_api.expect(page.locator("#job-status")).to_have_text("queued")

        def polls() -> list[str]:
            return [u for u in requested if u == f"{url}/jobs/{job}"]

        # The first look at the job, then the first poll after the stream failed.
        deadline = time.monotonic() + 10
        while len(polls()) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        # The next poll is a second away: nothing more may come before it.
        page.wait_for_timeout(500)
        assert len(polls()) == 2, polls()
        assert failures == []
        browser.close()
