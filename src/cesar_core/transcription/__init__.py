"""Audio in, transcript out: decoding, model resolution, the faster-whisper engine, formats.

Importing this package loads no engine: faster-whisper, PyAV and NumPy come with
:mod:`.whisper`, when a transcriber is built. The transcriber a worker runs, chosen among
the plugins' and able to add speakers, comes from :func:`cesar_core.transcribers.open_transcriber`.
"""

from __future__ import annotations

from ..protocols import TranscriberFactory

__all__ = ["TranscriberFactory"]
