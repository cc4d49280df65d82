"""The seams of the library, as structural protocols.

Anything with these methods plugs in: a third-party package does not subclass anything of
ours, it only has to look right to a type checker and pass the behaviour tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from attrs import frozen

from .transcript import TranscribeOptions, Transcript

#: Called with the fraction of the audio done, from 0.0 to 1.0. Raising from it stops the
#: transcription: that is how a cancelled job stops its worker thread.
ProgressCallback = Callable[[float], None]

#: A path, or an open binary file positioned at the start of the audio.
AudioInput = str | Path | BinaryIO


@frozen(kw_only=True)
class ModelLocation:
    """Where a model is, or would be, and how it got there.

    ``path`` is None for a model a source knows about but cannot provide yet (a carrier
    package that is not installed); ``note`` then says how to get it.
    """

    name: str
    source: str
    path: Path | None
    multilingual: bool | None = None
    note: str = ""


@runtime_checkable
class Transcriber(Protocol):
    """Turns audio into a :class:`Transcript`.

    Implementations must be safe to call from several threads at once: the job worker runs
    each job in its own thread and shares one transcriber (and so one warm model).
    """

    def transcribe(
        self,
        audio: AudioInput,
        options: TranscribeOptions,
        progress: ProgressCallback | None = None,
    ) -> Transcript:
        """Transcribe ``audio``; raise a :class:`cesar_core.errors.CesarError` on bad input."""
        ...


@runtime_checkable
class ModelSource(Protocol):
    """One place models can come from: a directory, a package, a cache, a hub.

    Sources are asked in ascending ``priority`` (built-ins: path 10, package 20, cache 30,
    hub 90) and the first that resolves a name wins.
    """

    name: str
    priority: int

    def resolve(self, model: str) -> ModelLocation | None:
        """Return where ``model`` lives, or None when this source does not have it.

        Raise :class:`cesar_core.errors.ModelIntegrityError` when the source has the model
        but its files are damaged, so that a broken copy is never silently skipped.
        """
        ...

    def available(self) -> Iterable[ModelLocation]:
        """Every model this source can provide right now (or could, once installed)."""
        ...
