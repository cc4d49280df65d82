"""Helpers shared by the benchmarks: long audio made from the fixtures, timing, statistics."""

from __future__ import annotations

import statistics
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cesar_core.transcription.audio import SAMPLE_RATE, load_audio

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def long_audio(minutes: float, directory: Path) -> Path:
    """A 16 kHz WAV of ``minutes`` of real speech: the long fixture repeated with pauses."""
    target = directory / f"speech_{minutes:g}min.wav"
    if target.exists():
        return target
    speech = load_audio(DATA / "long_en.opus")
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    unit = np.concatenate([speech, pause])
    total = round(minutes * 60 * SAMPLE_RATE)
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        written = 0
        while written < total:
            piece = unit[: total - written]
            out.writeframes((np.clip(piece, -1, 1) * 32767).astype("<i2").tobytes())
            written += len(piece)
    return target


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def summary(samples: list[float]) -> dict[str, float]:
    return {"min": min(samples), "median": statistics.median(samples), "n": len(samples)}
