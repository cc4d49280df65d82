"""The built-in transcriber, registered through the ``cesar_transcribers`` hook.

It is an object rather than a module of hook functions because it needs the plugin manager
it is registered with: the whisper engine resolves model names through every plugin's model
sources, and the manager is handed over here, when it is built, instead of being looked up
from global state when a transcriber is made.
"""

from __future__ import annotations

import pluggy

from ..hookspecs import hookimpl
from ..protocols import Transcriber, TranscriberFactory
from ..settings import Settings


class BuiltinTranscribers:
    """Provides ``whisper``; faster-whisper is imported only when one is built."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self._manager = manager

    @hookimpl
    def cesar_transcribers(self) -> dict[str, TranscriberFactory]:
        return {"whisper": self.whisper}

    def whisper(self, settings: Settings) -> Transcriber:
        """A faster-whisper transcriber whose models come from every plugin's sources."""
        from .models import ModelResolver
        from .whisper import WhisperTranscriber

        return WhisperTranscriber(settings, ModelResolver.from_plugins(self._manager, settings))
