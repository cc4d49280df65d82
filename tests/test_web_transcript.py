"""The page's transcript in a real browser: reached and played from the keyboard alone, and
its speakers renamed.

One ``cesar serve`` (one worker) transcribes both jobs once for the module: a short talk
with word timings, and a stereo call whose speakers are its channels (``diarize=channels``
needs no voice model).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import srt
import webvtt

from .conftest import DATA
from .http_helpers import serving, wait_for
from .test_web import CHROMIUM, screenshot

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)"
)
sync_api = pytest.importorskip("playwright.sync_api")


def _transcribed(api: httpx.Client, name: str, **fields: str) -> dict[str, Any]:
    with (DATA / name).open("rb") as audio:
        answer = api.post("/transcribe", files={"file": (name, audio)}, data=fields)
    assert answer.status_code == 202, answer.text
    done = wait_for(api, answer.json()["id"], timeout=300)
    assert done["status"] == "completed", done
    return done


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The server's URL, and the two jobs it completed."""
    root = tmp_path_factory.mktemp("served-page")
    with serving(root, CESAR_WORKERS="1") as url, httpx.Client(base_url=url, timeout=60) as api:
        yield {
            "url": url,
            "talk": _transcribed(api, "speech_en.opus", word_timestamps="true"),
            "call": _transcribed(api, "call_stereo.opus", diarize="channels"),
        }


@pytest.fixture
def page(served: dict[str, Any], tmp_path: Path) -> Iterator[Any]:
    """A fresh browser page that fails the test on any script error."""
    failures: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1100, "height": 700}, accept_downloads=True)
        page.on("pageerror", lambda error: failures.append(str(error)))
        yield page
        browser.close()
    assert not failures


def _open(page: Any, served: dict[str, Any], job: str) -> None:
    page.goto(f"{served['url']}/#/jobs/{served[job]['id']}")
    page.wait_for_function("document.getElementById('audio').readyState >= 1")
    page.wait_for_selector("#transcript p[data-start]")


def _focused(page: Any) -> dict[str, Any]:
    """What has the keyboard focus: its text, classes, start time and whether the browser
    draws its focus ring, and whether it is inside the transcript."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => {
          const el = document.activeElement;
          const ring = el.matches(':focus-visible') && getComputedStyle(el).outlineStyle !== 'none'
            && parseFloat(getComputedStyle(el).outlineWidth) >= 2;
          return {text: el.textContent.trim(), cls: el.className, start: el.dataset.start
                    ?? el.closest('p')?.dataset.start, ring,
                  inside: document.getElementById('transcript').contains(el), id: el.id};
        }"""
    )


def _current_time(page: Any) -> float:
    return float(page.evaluate("document.getElementById('audio').currentTime"))


def test_the_transcript_is_one_tab_stop_walked_with_the_arrow_keys(
    served: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    """Tab enters the transcript once and leaves it with the next Tab; the arrow keys move
    from word to word (up and down: segment to segment), Enter and Space play from the
    focused word, which shows a focus ring; Shift+Tab comes back to the same word."""
    _open(page, served, "talk")
    transcript = page.locator("#transcript")
    sync_api.expect(transcript).to_have_accessible_description(
        re.compile("arrow keys move from word to word.*Enter or Space plays", re.IGNORECASE)
    )
    tab_stops = transcript.locator("[tabindex='0']")
    sync_api.expect(tab_stops).to_have_count(1)
    page.get_by_role("link", name="Download TSV").focus()
    page.keyboard.press("Tab")
    first = _focused(page)
    assert first["inside"], first
    assert first["ring"], first
    assert float(first["start"]) == served["talk"]["segments"][0]["start"]
    page.keyboard.press("Tab")
    assert not _focused(page)["inside"]  # one Tab stop for the whole transcript
    page.keyboard.press("Shift+Tab")
    assert _focused(page) == first

    words = [w for s in served["talk"]["segments"] for w in s["words"]]
    lazy = next(w for w in words if w["word"].strip().lower().startswith("lazy"))
    assert lazy["start"] > 1.0  # away from where the audio starts: the seek has to move it
    for _ in range(40):
        page.keyboard.press("ArrowRight")
        if _focused(page)["text"].lower().startswith("lazy"):
            break
    on_lazy = _focused(page)
    assert on_lazy["text"].lower().startswith("lazy"), on_lazy
    assert on_lazy["ring"]
    assert "w" in on_lazy["cls"].split()
    sync_api.expect(page.get_by_role("button", name=lazy["word"].strip())).to_be_focused()
    sync_api.expect(tab_stops).to_have_count(1)
    assert _current_time(page) < 0.5
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"Math.abs(document.getElementById('audio').currentTime - {lazy['start']}) < 0.05"
    )
    sync_api.expect(transcript.locator(".w.now")).to_have_text(lazy["word"])
    assert _focused(page)["ring"]  # the mark of the word playing does not hide the ring
    screenshot(page, tmp_path, "keyboard-seek")

    page.keyboard.press("ArrowLeft")
    before = _focused(page)
    assert float(before["start"]) < lazy["start"]
    page.keyboard.press("Space")
    page.wait_for_function(
        f"Math.abs(document.getElementById('audio').currentTime - {before['start']}) < 0.05"
    )
    assert page.evaluate("scrollY") == 0  # Space played, it did not scroll the page

    page.keyboard.press("End")
    assert float(_focused(page)["start"]) == words[-1]["start"]
    page.keyboard.press("Home")
    assert _focused(page) == first
    if len(served["talk"]["segments"]) > 1:
        page.keyboard.press("ArrowDown")
        assert float(_focused(page)["start"]) == served["talk"]["segments"][1]["start"]
        page.keyboard.press("ArrowUp")
        assert _focused(page) == first


def _srt_labels(page: Any) -> set[str]:
    """The speakers' labels (``Speaker 1``, or a name) in the SRT the page downloads."""
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download SRT").click()
    subtitles = srt.parse(Path(caught.value.path()).read_text())
    return {m[1] for s in subtitles for m in re.finditer(r"^([^:\n]+): ", s.content, re.M)}


def test_unnamed_speakers_show_on_the_page_as_in_the_downloads(
    served: dict[str, Any], page: Any
) -> None:
    """A two-channel call: the page labels its speakers as the SRT does (``Speaker 1`` is
    the first of the job's speakers), in the segments, in the time buttons' names and in
    the form that renames them, never by their raw ids."""
    _open(page, served, "call")
    who = page.locator("#transcript .who")
    shown = {text.removesuffix(":") for text in who.all_inner_texts()}
    assert shown == _srt_labels(page) == {"Speaker 1", "Speaker 2"}
    ids = [s["id"] for s in served["call"]["speakers"]]
    for number, speaker in enumerate(ids, start=1):
        ours = page.locator(f"#transcript .who[data-speaker='{speaker}']")
        assert set(ours.all_inner_texts()) == {f"Speaker {number}:"}
    first = served["call"]["segments"][0]
    number = ids.index(first["speaker"]) + 1
    time = page.locator("#transcript .at").first
    sync_api.expect(time).to_have_accessible_name(
        re.compile(rf"^Play from 0:0\d, Speaker {number}$")
    )
    assert "SPEAKER_" not in page.locator("#transcript").inner_text()

    page.locator("summary", has_text="Speaker names").click()
    form = page.get_by_role("form", name="Speaker names")
    for number in (1, 2):
        field = form.get_by_role("textbox", name=re.compile(rf"^Speaker {number}\b"))
        sync_api.expect(field).to_have_attribute("placeholder", f"Speaker {number}")
    assert "SPEAKER_" not in form.inner_text()


def test_a_speaker_renamed_on_the_page_is_named_everywhere(
    served: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    """A two-channel call: name Speaker 1 "Alice" on the page; the transcript and the time
    buttons show her, and the SRT and VTT the page downloads carry her name; clearing the
    name takes it back."""
    _open(page, served, "call")
    first = served["call"]["speakers"][0]["id"]
    who = page.locator("#transcript .who")
    assert set(who.all_inner_texts()) == {"Speaker 1:", "Speaker 2:"}
    form = page.get_by_role("form", name="Speaker names")
    sync_api.expect(form).to_be_hidden()  # folded: open, it would fill a phone's screen
    page.locator("summary", has_text="Speaker names").press("Enter")
    sync_api.expect(form).to_be_visible()
    alice = form.get_by_role("textbox", name=re.compile(r"^Speaker 1\b"))
    alice.fill("Alice")
    alice.press("Enter")  # the form's submit, from the keyboard
    sync_api.expect(form.get_by_role("status")).to_have_text("Names saved.")
    named = page.locator(f"#transcript .who[data-speaker='{first}']")
    sync_api.expect(named.first).to_have_text("Alice:")
    assert set(named.all_inner_texts()) == {"Alice:"}
    sync_api.expect(who.filter(has_text="Speaker 2:")).not_to_have_count(0)
    times = page.locator("#transcript .at")
    spoken = [times.nth(i).get_attribute("aria-label") or "" for i in range(times.count())]
    assert any(name.endswith(", Alice") for name in spoken), spoken
    assert not any("SPEAKER_" in name for name in spoken), spoken
    # The field still says whom it renames; the name is its value.
    sync_api.expect(form.get_by_role("textbox", name=re.compile(r"^Speaker 1\b"))).to_have_value(
        "Alice"
    )
    screenshot(page, tmp_path, "renamed")

    assert _srt_labels(page) == {"Alice", "Speaker 2"}
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download VTT").click()
    vtt = webvtt.from_buffer(io.StringIO(Path(caught.value.path()).read_text()))
    assert {c.voice for c in vtt} == {"Alice", "Speaker 2"}

    page.reload()
    sync_api.expect(named.first).to_have_text("Alice:")
    page.locator("summary", has_text="Speaker names").click()
    alice = form.get_by_role("textbox", name=re.compile(r"^Speaker 1\b"))
    sync_api.expect(alice).to_have_value("Alice")
    alice.fill("")
    form.get_by_role("button", name="Save names").click()
    sync_api.expect(named.first).to_have_text("Speaker 1:")
    job = httpx.get(f"{served['url']}/jobs/{served['call']['id']}").json()
    assert [s["name"] for s in job["speakers"]] == [None, None]


def test_the_page_asks_for_one_speaker_per_channel(served: dict[str, Any], page: Any) -> None:
    """Speakers are a choice of three on the page; "One speaker per channel" sends
    ``diarize=channels``: the call comes back with its two channels' speakers, shown on the
    page as the API lists them."""
    page.goto(f"{served['url']}/")
    page.wait_for_selector("#home:not([hidden])")
    choice = page.get_by_role("combobox", name="Speakers")
    sync_api.expect(choice).to_be_visible()
    options = choice.locator("option")
    sync_api.expect(options).to_have_text(
        ["No speakers", "Speakers by voice", "One speaker per channel"]
    )
    sync_api.expect(choice).to_have_value("")
    page.set_input_files("#files", DATA / "call_stereo.opus")
    choice.focus()
    choice.select_option(label="One speaker per channel")
    with page.expect_response(lambda r: r.url.endswith("/transcribe")) as sent:
        page.get_by_role("button", name="Transcribe").click()
    job_id = sent.value.json()["id"]
    sync_api.expect(choice).to_have_value("channels")  # kept for the next files
    with httpx.Client(base_url=served["url"], timeout=60) as api:
        job: dict[str, Any] = wait_for(api, job_id, timeout=300)
    assert job["status"] == "completed", job
    assert job["options"]["diarize"] == "channels"
    assert [s["id"] for s in job["speakers"]] == ["SPEAKER_00", "SPEAKER_01"]
    page.goto(f"{served['url']}/#/jobs/{job_id}")
    page.wait_for_selector("#transcript p[data-start]")
    shown = {t.removesuffix(":") for t in page.locator("#transcript .who").all_inner_texts()}
    assert shown == {"Speaker 1", "Speaker 2"}


def test_a_server_without_speakers_shows_no_speakers_choice(
    served: dict[str, Any], page: Any
) -> None:
    """Where the server's ``POST /transcribe`` takes no ``diarize`` (as its OpenAPI document
    says), the page offers no speakers choice at all."""

    def without_diarize(route: Any) -> None:
        spec = route.fetch().json()
        form = spec["paths"]["/transcribe"]["post"]["requestBody"]["content"]
        del form["multipart/form-data"]["schema"]["properties"]["diarize"]
        route.fulfill(json=spec)

    page.route("**/openapi.json", without_diarize)
    page.goto(f"{served['url']}/")
    page.wait_for_selector("#home:not([hidden])")
    sync_api.expect(page.get_by_role("combobox", name="Model")).to_be_visible()
    sync_api.expect(page.locator("#speakers")).to_be_hidden()
