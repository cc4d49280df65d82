"""Audio in, transcript out: decoding, model resolution, the faster-whisper engine, formats.

Workers pick their transcriber by name (``CESAR_TRANSCRIBER``, ``cesar worker
--transcriber``) among those plugins provide through the ``cesar_transcribers`` hook.
Importing this package loads no engine: faster-whisper, PyAV and NumPy come with
:mod:`.whisper`, when a transcriber is built.
"""

from __future__ import annotations

import pluggy

from ..protocols import Transcriber, TranscriberFactory
from ..registry import named, pick
from ..settings import Settings

__all__ = ["TranscriberFactory", "open_transcriber"]


def open_transcriber(settings: Settings, manager: pluggy.PluginManager) -> Transcriber:
    """The transcriber ``settings.transcriber`` names, among those of ``manager``'s plugins."""
    factory: TranscriberFactory = pick(
        named(manager, "cesar_transcribers"),
        settings.transcriber,
        missing=f"No transcriber is called {settings.transcriber!r}",
        hint="The built-in one is 'whisper'.",
    )
    from ..diarization import with_diarization

    # Any transcriber can give speakers: the wrapper adds them to jobs that ask for them.
    return with_diarization(factory(settings), manager, settings)
