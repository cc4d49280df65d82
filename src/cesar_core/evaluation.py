"""Measuring transcription: word error rate against a known text, diarization error rate
against a reference RTTM, and long speech to test on.

The tests and the benchmarks both judge transcripts by word error rate and both need long
audio made of real speech; they share these helpers here rather than importing one from
the other. Anyone checking a model or a deployment against their own recordings can use
them too. The word error rate needs ``jiwer`` (the ``test`` and ``bench`` extras), which
is imported only when it is asked for.
"""

from __future__ import annotations

import itertools
import re
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .transcript import SpeakerTurn
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


def read_rttm(path: Path) -> list[SpeakerTurn]:
    """The speaker turns of an RTTM file (the NIST format diarization references use)."""
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0] == "SPEAKER":
            start, length = float(fields[3]), float(fields[4])
            turns.append(SpeakerTurn(start=start, end=start + length, speaker=fields[7]))
    return turns


def der(
    reference: Sequence[SpeakerTurn],
    hypothesis: Sequence[SpeakerTurn],
    *,
    collar: float = 0.0,
    step: float = 0.01,
) -> float:
    """Diarization error rate: missed speech, false alarms and speaker confusion, over the
    reference's speech time, with the one-to-one speaker mapping that minimises it.

    Counted as NIST's md-eval does, on ``step``-second frames (overlaps included);
    ``collar`` seconds either side of each reference boundary are not scored (md-eval's
    usual collar is 0.25). Written here rather than pulled from pyannote.metrics, which
    brings pandas, sympy and more; the mapping is found exactly, by trying every
    assignment, which is quick up to about 8 speakers a side.
    """
    end = max([t.end for t in [*reference, *hypothesis]], default=0.0)
    frames = int(np.ceil(end / step)) + 1

    def grid(turns: Sequence[SpeakerTurn]) -> tuple[list[str], np.ndarray]:
        names = sorted({t.speaker for t in turns})
        active = np.zeros((len(names), frames), dtype=bool)
        for t in turns:
            active[names.index(t.speaker), round(t.start / step) : round(t.end / step)] = True
        return names, active

    ref_names, ref = grid(reference)
    hyp_names, hyp = grid(hypothesis)
    scored = np.ones(frames, dtype=bool)
    for t in reference:
        for edge in (t.start, t.end):
            scored[max(0, round((edge - collar) / step)) : round((edge + collar) / step)] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    total = float(n_ref.sum())
    if total == 0:
        return 0.0 if n_hyp.sum() == 0 else 1.0
    together = ref.astype(np.int64) @ hyp.T.astype(np.int64)  # frames each pair shares
    best = 0
    small, large = sorted((len(ref_names), len(hyp_names)))
    for chosen in itertools.permutations(range(large), small):
        pairs = zip(range(small), chosen, strict=True)
        if len(ref_names) <= len(hyp_names):
            matched = sum(int(together[r, h]) for r, h in pairs)
        else:
            matched = sum(int(together[r, h]) for h, r in pairs)
        best = max(best, matched)
    errors = np.maximum(n_ref, n_hyp).sum() - best
    return float(errors) / total
