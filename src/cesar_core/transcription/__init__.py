"""Audio in, transcript out: decoding, model resolution, the faster-whisper engine, formats.

Workers pick their transcriber by name (``CESAR_TRANSCRIBER``, ``cesar worker
--transcriber``) among those plugins provide through the ``cesar_transcribers`` hook.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from ..protocols import Transcriber
from ..settings import Settings

#: Builds a transcriber from the settings (model cache, default model, downloads allowed).
TranscriberFactory = Callable[[Settings], Transcriber]


def open_transcriber(
    settings: Settings, manager: pluggy.PluginManager | None = None
) -> Transcriber:
    """The transcriber ``settings.transcriber`` names."""
    from ..plugins import get_manager, named, pick

    factory: TranscriberFactory = pick(
        named(manager or get_manager(), "cesar_transcribers"),
        settings.transcriber,
        missing=f"No transcriber is called {settings.transcriber!r}",
        hint="The built-in one is 'whisper'.",
    )
    return factory(settings)
