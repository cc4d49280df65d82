"""Long speech for the tests that need minutes of it, made from the committed fixture."""

from __future__ import annotations

from pathlib import Path

from cesar_core import evaluation

LONG_SPEECH = Path(__file__).parent / "data" / "long_en.opus"


def long_audio(minutes: float, directory: Path) -> Path:
    """A 16 kHz WAV of ``minutes`` of real speech: the long fixture repeated with pauses."""
    return evaluation.long_audio(LONG_SPEECH, minutes, directory)
