"""The plugin manager and the model-source hook, as a third-party plugin would use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cesar_core import (
    ModelLocation,
    ModelResolver,
    Settings,
    TranscribeOptions,
    WhisperTranscriber,
    hookimpl,
)
from cesar_core.plugins import BUILTIN_PLUGINS, make_manager

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
