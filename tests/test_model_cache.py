"""The cache of loaded models, with the real tiny.en model: a bound with least-recently-used
eviction that never takes a model in use, and an idle time-to-live."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from pathlib import Path

import pytest

from cesar_core import Settings, TranscribeOptions, WhisperTranscriber
from cesar_core.errors import InvalidOptionsError
from cesar_core.transcription.whisper import ModelCache


@pytest.fixture(scope="module")
def tiny(settings: Settings) -> Path:
    path = WhisperTranscriber(settings).resolver.resolve("tiny.en").path
    assert path is not None
    return path


def load(cache: ModelCache, path: Path, threads: int) -> object:
    return cache.get(path, "cpu", "int8", threads)


def loaded_threads(cache: ModelCache) -> list[int]:
    return sorted(key[3] for key in cache.loaded())


def test_the_least_recently_used_model_goes_first(tiny: Path) -> None:
    cache = ModelCache(max_models=2)
    first = weakref.ref(load(cache, tiny, 1))
    load(cache, tiny, 2)
    load(cache, tiny, 1)  # 1 is now more recent than 2
    load(cache, tiny, 3)
    assert loaded_threads(cache) == [1, 3]
    assert first() is not None
    for threads in (4, 5, 6):
        load(cache, tiny, threads)
    assert len(cache) == 2
    gc.collect()
    assert first() is None, "an evicted model must be freed, not kept by the cache"


def test_a_model_in_use_is_never_evicted(tiny: Path) -> None:
    cache = ModelCache(max_models=1)
    with cache.use(tiny, "cpu", "int8", 1) as busy:
        load(cache, tiny, 2)
        load(cache, tiny, 3)
        assert 1 in loaded_threads(cache)
        assert len(cache) <= 2  # the one in use, and the newest
        assert busy is cache.get(tiny, "cpu", "int8", 1)
    assert len(cache) == 1  # back within the bound once it is released


def test_ttl_zero_unloads_after_each_use(tiny: Path, settings: Settings, data: Path) -> None:
    transcriber = WhisperTranscriber(Settings.load(model_ttl_seconds=0))
    text = transcriber.transcribe(data / "speech_en.wav", TranscribeOptions()).text
    assert text.strip()
    assert len(transcriber.models) == 0


def test_an_idle_model_is_unloaded_after_its_ttl(tiny: Path) -> None:
    cache = ModelCache(ttl_seconds=0.5)
    gone = weakref.ref(load(cache, tiny, 1))
    assert len(cache) == 1
    deadline = time.monotonic() + 10
    while len(cache) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(cache) == 0
    gc.collect()
    assert gone() is None


def test_the_ttl_counts_from_the_end_of_the_last_use(tiny: Path) -> None:
    cache = ModelCache(ttl_seconds=0.3)
    release = threading.Event()

    def long_job() -> None:
        with cache.use(tiny, "cpu", "int8", 1):
            release.wait(10)

    job = threading.Thread(target=long_job)
    job.start()
    try:
        time.sleep(1.0)  # more than three TTLs while in use
        assert len(cache) == 1
    finally:
        release.set()
        job.join()
    time.sleep(0.1)
    assert len(cache) == 1  # released 0.1 s ago: not idle for long enough yet
    deadline = time.monotonic() + 10
    while len(cache) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(cache) == 0


def test_ttl_minus_one_keeps_models(tiny: Path) -> None:
    cache = ModelCache(ttl_seconds=-1)
    load(cache, tiny, 1)
    time.sleep(0.3)
    assert len(cache) == 1


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CESAR_MAX_LOADED_MODELS", "0"), ("CESAR_MODEL_TTL_SECONDS", "-2")],
)
def test_settings_out_of_range(variable: str, value: str) -> None:
    with pytest.raises(InvalidOptionsError, match=variable.removeprefix("CESAR_").lower()):
        Settings.load({variable: value})


def test_settings_reach_the_cache() -> None:
    loaded = Settings.load({"CESAR_MAX_LOADED_MODELS": "3", "CESAR_MODEL_TTL_SECONDS": "90"})
    transcriber = WhisperTranscriber(loaded)
    assert (transcriber.models.max_models, transcriber.models.ttl_seconds) == (3, 90.0)
