"""Measuring transcription: word error rate against a known text, and long speech to test on.

The tests and the benchmarks both judge transcripts by word error rate and both need long
audio made of real speech; they share these helpers here rather than importing one from
the other. Anyone checking a model or a deployment against their own recordings can use
them too. The word error rate needs ``jiwer`` (the ``test`` and ``bench`` extras), which
is imported only when it is asked for.
"""

from __future__ import annotations

import re
import wave
from pathlib import Path

import numpy as np

from .transcription.audio import SAMPLE_RATE, load_audio

#: Seconds of silence :func:`long_audio` puts between repetitions of the speech.
PAUSE_S = 1.0


def normalise(text: str) -> str:
    """Lower case, no punctuation: what word error rate should compare, so that a comma
    or a capital letter is not counted as a wrong word."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after normalising both.

    An empty hypothesis counts as every word missed (jiwer refuses an empty string).
    """
    try:
        import jiwer
    except ImportError as exc:
        raise ImportError(
            "Word error rates need jiwer: pip install 'cesar[bench]' (or 'cesar[test]')."
        ) from exc
    return float(jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>"))


def long_audio(source: Path, minutes: float, directory: Path) -> Path:
    """A 16 kHz WAV of ``minutes`` of real speech: ``source`` repeated, each time followed
    by :data:`PAUSE_S` of silence, written into ``directory`` (and reused from there).

    Real speech, not noise or a tone, so that long-audio behaviour (windows, memory,
    accuracy) is measured on what users send; the repetitions make its text known.
    """
    target = directory / f"{source.stem}_{minutes:g}min.wav"
    if target.exists():
        return target
    speech = load_audio(source)
    unit = np.concatenate([speech, np.zeros(round(PAUSE_S * SAMPLE_RATE), dtype=np.float32)])
    total = round(minutes * 60 * SAMPLE_RATE)
    scratch = target.with_suffix(".part")
    with wave.open(str(scratch), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        written = 0
        while written < total:
            piece = unit[: total - written]
            out.writeframes((np.clip(piece, -1, 1) * 32767).astype("<i2").tobytes())
            written += len(piece)
    scratch.rename(target)  # a run stopped half-way leaves no short file to be reused
    return target


def repeated_text(text: str, source_seconds: float, minutes: float) -> str:
    """The text of :func:`long_audio` made of a ``source_seconds`` recording of ``text``:
    the text once for every repetition the audio starts."""
    unit = source_seconds + PAUSE_S
    count = -(-round(minutes * 60 * SAMPLE_RATE) // round(unit * SAMPLE_RATE))
    return " ".join([text] * count)
