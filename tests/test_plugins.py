"""The plugin manager and the hooks, as a third-party plugin would use them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cesar_core import (
    InvalidOptionsError,
    ModelLocation,
    ModelResolver,
    Settings,
    TranscribeOptions,
    Transcript,
    WhisperTranscriber,
    hookimpl,
)
from cesar_core.diarization import DiarizingTranscriber
from cesar_core.plugins import BUILTIN_PLUGINS, make_manager
from cesar_core.service import JobService
from cesar_core.storage import open_storage
from cesar_core.storage.local import LocalStorage
from cesar_core.transcribers import open_transcriber
from cesar_core.worker import Worker

from .conftest import REFERENCES, wer


class AliasSource:
    """Serves the carried tiny.en model under another name, as a plugin's source might."""

    name = "alias"
    priority = 15

    def __init__(self, target: Path) -> None:
        self.target = target

    def resolve(self, model: str) -> ModelLocation | None:
        if model != "office-english":
            return None
        return ModelLocation(name=model, source=self.name, path=self.target, multilingual=False)

    def available(self) -> list[ModelLocation]:
        return [ModelLocation(name="office-english", source=self.name, path=self.target)]


def test_a_plugin_model_source_is_used_end_to_end(settings: Settings, data: Path) -> None:
    manager = make_manager({})
    tiny = ModelResolver.from_plugins(manager, settings).resolve("tiny.en").path
    assert tiny is not None

    class Plugin:
        @hookimpl
        def cesar_model_sources(self, settings: Settings) -> list[AliasSource]:
            return [AliasSource(tiny)]

    manager.register(Plugin(), name="office")
    resolver = ModelResolver.from_plugins(manager, settings)
    assert ("office-english", "alias") in {(m.name, m.source) for m in resolver.available()}
    transcriber = WhisperTranscriber(settings, resolver)
    result = transcriber.transcribe(
        data / "speech_en.wav", TranscribeOptions(model="office-english")
    )
    assert result.model == "office-english"
    assert wer(REFERENCES["speech_en"], result.text) < 0.5


def test_builtins_are_registered_last_and_always() -> None:
    manager = make_manager({"CESAR_PLUGINS": ""})
    names = [manager.get_name(plugin) for plugin in manager.get_plugins()]
    assert set(BUILTIN_PLUGINS) <= set(names)


def test_blocked_plugins_cannot_register() -> None:
    manager = make_manager({"CESAR_BLOCK_PLUGINS": "office"})

    class Plugin:
        @hookimpl
        def cesar_model_sources(self, settings: Settings) -> list[AliasSource]:
            return []

    assert manager.register(Plugin(), name="office") is None
    assert manager.is_blocked("office")


def test_a_misspelt_hook_is_refused() -> None:
    manager = make_manager({})

    class Broken:
        @hookimpl
        def cesar_model_source(self) -> list[AliasSource]:  # missing the final "s"
            return []

    manager.register(Broken(), name="broken")
    with pytest.raises(Exception, match="unknown hook 'cesar_model_source'"):
        manager.check_pending()


class EchoTranscriber:
    def transcribe(self, audio: object, options: object, progress: object = None) -> Transcript:
        return Transcript(
            text=Path(str(getattr(audio, "name", audio))).name,
            segments=(),
            language="en",
            language_probability=1.0,
            duration=0.0,
            model="echo",
        )


class EchoPlugin:
    @hookimpl
    def cesar_transcribers(self) -> dict[str, object]:
        return {"echo": lambda settings: EchoTranscriber()}


def test_a_plugin_transcriber_runs_jobs_end_to_end(tmp_path: Path, data: Path) -> None:
    manager = make_manager({"CESAR_PLUGINS": ""})
    manager.register(EchoPlugin(), name="echo")
    settings = Settings(data_dir=tmp_path, transcriber="echo")
    engine = open_transcriber(settings, manager)
    # Every transcriber comes wrapped, so that any of them can give speakers.
    assert isinstance(engine, DiarizingTranscriber)
    assert isinstance(engine.inner, EchoTranscriber)
    whisper = open_transcriber(Settings(data_dir=tmp_path), manager)
    assert isinstance(whisper, DiarizingTranscriber)
    assert isinstance(whisper.inner, WhisperTranscriber)

    async def scenario() -> str:
        service = await JobService.open(settings, manager)
        job, _ = await service.submit_file(data / "speech_en.wav")
        await Worker(service.store, service.storage, engine, events=service.events).run(
            until_idle=True
        )
        done = await service.get(job.id)
        await service.close()
        assert done.result is not None
        return done.result.text

    # The small upload reached the transcriber inline, named after the file.
    assert asyncio.run(scenario()) == "speech_en.wav"
    with pytest.raises(InvalidOptionsError, match=r"No transcriber is called 'nope'") as error:
        open_transcriber(Settings(data_dir=tmp_path, transcriber="nope"), manager)
    assert "(available: echo, whisper)" in str(error.value)


def test_cesar_worker_refuses_an_unknown_transcriber(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cesar_cli", "worker", "--transcriber", "nope"],
        capture_output=True,
        text=True,
        env={**os.environ, "CESAR_DATA_DIR": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "No transcriber is called 'nope' (available: whisper)" in result.stderr
    assert not (tmp_path / "jobs.db").exists()  # refused before opening anything


def test_storage_is_chosen_by_url(tmp_path: Path, data: Path) -> None:
    elsewhere = tmp_path / "shared mount" / "audio"
    # No inline audio: every upload goes to storage.
    settings = Settings(
        data_dir=tmp_path / "data", storage=elsewhere.as_uri(), inline_audio_bytes=0
    )

    manager = make_manager({})

    async def scenario() -> None:
        service = await JobService.open(settings, manager)
        job, _ = await service.submit_file(data / "speech_en.wav")
        assert (elsewhere / job.id / "audio.wav").is_file()
        await service.close()
        default = await open_storage(Settings(data_dir=tmp_path / "data").storage_url, manager)
        assert isinstance(default, LocalStorage)
        assert default.root == tmp_path / "data" / "audio"
        for url, message in (
            (
                "s3://bucket/audio",
                r"No storage handles 's3://bucket/audio' \(available: file, postgres, postgresql\)",
            ),
            ("file://server/share", "Invalid storage URL"),
        ):
            with pytest.raises(InvalidOptionsError, match=message):
                await open_storage(url, manager)

    asyncio.run(scenario())
