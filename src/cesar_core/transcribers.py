"""The transcriber a worker runs: the engine a plugin provides, able to add speakers.

Workers pick their transcriber by name (``CESAR_TRANSCRIBER``, ``cesar worker
--transcriber``) among those plugins provide through the ``cesar_transcribers`` hook, and
any of them can give speakers: :mod:`.diarization` wraps it. This sits above both engine
packages, so that neither imports the other back (diarization uses transcription's model
cache and audio decoding; transcription knows nothing of speakers).
"""

from __future__ import annotations

import pluggy

from .diarization import DiarizingTranscriber, with_diarization
from .protocols import TranscriberFactory
from .registry import named, pick
from .settings import Settings

__all__ = ["open_transcriber"]


def open_transcriber(settings: Settings, manager: pluggy.PluginManager) -> DiarizingTranscriber:
    """The transcriber ``settings.transcriber`` names, among those of ``manager``'s plugins,
    wrapped to add speakers to the jobs that ask for them."""
    factory: TranscriberFactory = pick(
        named(manager, "cesar_transcribers"),
        settings.transcriber,
        missing=f"No transcriber is called {settings.transcriber!r}",
        hint="The built-in one is 'whisper'.",
    )
    return with_diarization(factory(settings), manager, settings)
