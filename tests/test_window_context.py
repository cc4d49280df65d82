"""Context across the windows of long audio: with ``windows.PROMPT_TOKENS`` raised, each
window after the first is primed with the tokens decoded before it (after the user's prompt),
as one faster-whisper call primes each 30 seconds; by default (0, chosen by
bench/windows.py) windows start fresh. Real tiny.en on real speech; only faster-whisper's
``transcribe`` is watched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cesar_core import Settings, TranscribeOptions, WhisperTranscriber, evaluation
from cesar_core.transcription import windows
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio

from .conftest import REFERENCES, wer
from .speech_helpers import LONG_SPEECH, long_audio


class Calls:
    """The ``initial_prompt`` of every faster-whisper call windows make, in order, and
    the tokenizer of the model they were made to."""

    def __init__(self) -> None:
        self.prompts: list[Any] = []
        self.tokenizer: Any = None

    def text(self, tokens: list[int]) -> str:
        """The words of ``tokens``, timestamps left out (as faster-whisper decodes them)."""
        from faster_whisper.tokenizer import Tokenizer

        return str(Tokenizer(self.tokenizer, multilingual=False).decode(tokens))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    seen = Calls()

    class Watched(windows.LanguageWatch):
        def __init__(self, model: Any, allowed: tuple[str, ...] = ()) -> None:
            super().__init__(model, allowed)
            transcribe = self.model.transcribe
            seen.tokenizer = self.model.hf_tokenizer

            def watched(audio: Any, **kwargs: Any) -> Any:
                seen.prompts.append(kwargs["initial_prompt"])
                return transcribe(audio, **kwargs)

            self.model.transcribe = watched  # this window's copy of the model only

    monkeypatch.setattr(windows, "LanguageWatch", Watched)
    return seen


def test_each_window_is_primed_with_the_text_before_it(
    data: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, calls: Calls
) -> None:
    monkeypatch.setattr(windows, "WINDOW_S", 15.0)
    monkeypatch.setattr(windows, "PROMPT_TOKENS", 223)
    transcriber = WhisperTranscriber(settings)
    result = transcriber.transcribe(data / "long_en.opus", TranscribeOptions())
    assert len(calls.prompts) >= 3  # 34 s in windows of at most 15 s
    assert calls.prompts[0] is None
    for prompt in calls.prompts[1:]:
        assert isinstance(prompt, list)
        assert 0 < len(prompt) <= windows.PROMPT_TOKENS
    # The second window is primed with what the first said, ending with its last words.
    cut = windows._cut(load_audio(data / "long_en.opus")[: 15 * SAMPLE_RATE]) / SAMPLE_RATE
    first_window = [s for s in result.segments if s.end <= cut]
    primed = calls.text(calls.prompts[1])
    assert primed.strip().endswith(first_window[-1].text.strip())
    assert wer(REFERENCES["long_en"], result.text) < 0.15


def test_the_users_prompt_primes_every_window_before_the_text(
    data: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, calls: Calls
) -> None:
    monkeypatch.setattr(windows, "WINDOW_S", 15.0)
    monkeypatch.setattr(windows, "PROMPT_TOKENS", 223)
    transcriber = WhisperTranscriber(settings)
    transcriber.transcribe(data / "long_en.opus", TranscribeOptions(initial_prompt="Cesar Ltd."))
    assert calls.prompts[0] == "Cesar Ltd."
    assert all(calls.text(p).startswith(" Cesar Ltd.") for p in calls.prompts[1:])
    assert all(len(calls.text(p)) > len(" Cesar Ltd. ") for p in calls.prompts[1:])


@pytest.mark.parametrize(
    ("cap", "condition"), [(None, True), (223, False)], ids=["default", "no-condition"]
)
def test_fresh_windows_by_default_and_without_condition_on_previous_text(
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    calls: Calls,
    cap: int | None,
    condition: bool,
) -> None:
    """Only the user's prompt primes each window: by default, and whatever the cap when
    the caller turned off ``condition_on_previous_text``."""
    monkeypatch.setattr(windows, "WINDOW_S", 15.0)
    if cap is not None:
        monkeypatch.setattr(windows, "PROMPT_TOKENS", cap)
    options = TranscribeOptions(condition_on_previous_text=condition, initial_prompt="Cesar Ltd.")
    WhisperTranscriber(settings).transcribe(data / "long_en.opus", options)
    assert len(calls.prompts) >= 3
    assert calls.prompts == ["Cesar Ltd."] * len(calls.prompts)


def test_three_minutes_in_windows_are_as_accurate_as_one_raw_call(
    tmp_path: Path, settings: Settings
) -> None:
    """The target of the windows: no worse than raw faster-whisper at equal settings."""
    from faster_whisper import WhisperModel

    audio = long_audio(3, tmp_path)
    seconds = len(load_audio(LONG_SPEECH)) / SAMPLE_RATE
    reference = evaluation.repeated_text(REFERENCES["long_en"], seconds, 3)
    transcriber = WhisperTranscriber(settings)
    options = TranscribeOptions(compute_type="int8", cpu_threads=1)
    windowed = transcriber.transcribe(audio, options).text
    path = transcriber.resolver.resolve("tiny.en").path
    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1)
    raw = " ".join(s.text for s in model.transcribe(str(audio), beam_size=5)[0])
    assert wer(reference, windowed) <= wer(reference, raw) + 0.02, (windowed, raw)
