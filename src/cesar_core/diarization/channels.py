"""``diarize=channels``: one speaker per channel, told apart by loudness, with no model.

Calls and interviews are often recorded with each person on a channel of their own. Then
who speaks when is simply which channel is loud: every 30 ms frame goes to the loudest
channel when that channel is well above its own background, short gaps inside a turn are
bridged and blips shorter than a syllable dropped. The first channel is ``SPEAKER_00``,
the second ``SPEAKER_01``, and so on, whoever speaks first.
"""

from __future__ import annotations

from typing import Any

import av
import numpy as np
import numpy.typing as npt

from ..errors import AudioError, InvalidOptionsError
from ..protocols import AudioInput, ProgressCallback
from ..settings import Settings
from ..transcript import SpeakerTurn, TranscribeOptions

RATE = 16_000
FRAME_S = 0.03
#: Frames quieter than this (dBFS) are never speech, whatever the channel's level.
FLOOR_DB = -50.0
#: A frame is speech when it is no more than this many dB under the channel's loud level.
RELATIVE_DB = -25.0
#: Pauses shorter than this inside one speaker's talk do not end the turn.
BRIDGE_S = 0.5
#: Turns shorter than this are noise (a cough, a click), not speech.
MIN_TURN_S = 0.2


def decode_channels(
    source: AudioInput, start: float | None = None, end: float | None = None
) -> npt.NDArray[np.float32]:
    """The clip ``start``..``end`` of ``source`` as 16 kHz float32, one row per channel."""
    try:
        container: Any = av.open(str(source) if not hasattr(source, "read") else source)
    except (av.error.FFmpegError, OSError) as exc:
        raise AudioError(f"The audio cannot be decoded for speakers: {exc}.") from None
    with container:
        if not container.streams.audio:
            raise AudioError("The file has no audio track; there are no speakers to find.")
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels or 1
        if channels < 2:
            raise InvalidOptionsError(
                "diarize=channels needs a recording with one speaker per channel, but "
                "this one has a single channel.",
                hint="Use diarize=auto (the voice model) for a mono recording.",
            )
        layout = stream.codec_context.layout
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=RATE)
        pieces = [
            out.to_ndarray()
            for frame in container.decode(stream)
            for out in resampler.resample(frame)
        ]
        pieces.extend(out.to_ndarray() for out in resampler.resample(None))
    samples = np.concatenate(pieces, axis=1) if pieces else np.zeros((channels, 0), np.float32)
    first = round((start or 0.0) * RATE)
    last = None if end is None else round(end * RATE)
    return np.ascontiguousarray(samples[:, first:last], dtype=np.float32)


def channel_turns(samples: npt.NDArray[np.float32], offset: float = 0.0) -> list[SpeakerTurn]:
    """Speaker turns from per-channel loudness (see the module's text); times are
    ``offset`` seconds later than the samples' own."""
    frame = round(FRAME_S * RATE)
    count = samples.shape[1] // frame
    if count == 0:
        return []
    frames = samples[:, : count * frame].reshape(samples.shape[0], count, frame)
    level = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=2)) + 1e-10)
    loud = np.percentile(level, 95, axis=1, keepdims=True)
    active = (level > FLOOR_DB) & (level > loud + RELATIVE_DB)
    masked = np.where(active, level, -np.inf)
    speaker = np.where(active.any(axis=0), np.argmax(masked, axis=0), -1)
    turns: list[list[float]] = []  # [channel, start, end]
    for index, channel in enumerate(speaker.tolist()):
        if channel < 0:
            continue
        at = index * FRAME_S
        if turns and turns[-1][0] == channel and at - turns[-1][2] <= BRIDGE_S:
            turns[-1][2] = at + FRAME_S
        else:
            turns.append([channel, at, at + FRAME_S])
    return [
        SpeakerTurn(
            start=round(offset + start, 3),
            end=round(offset + end, 3),
            speaker=f"SPEAKER_{int(channel):02d}",
        )
        for channel, start, end in turns
        if end - start >= MIN_TURN_S
    ]


class ChannelDiarizer:
    """A :class:`~cesar_core.protocols.Diarizer` for one speaker per channel (no model)."""

    #: Keep the labels as channels give them: Speaker 1 is the first channel.
    keeps_labels = True

    def __init__(self, settings: Settings | None = None) -> None:
        """It holds nothing, so any number of threads may use one."""

    def diarize(
        self,
        audio: AudioInput,
        options: TranscribeOptions,
        progress: ProgressCallback | None = None,
    ) -> list[SpeakerTurn]:
        samples = decode_channels(audio, options.clip_start, options.clip_end)
        turns = channel_turns(samples, options.clip_start or 0.0)
        if progress:
            progress(1.0)
        return turns
