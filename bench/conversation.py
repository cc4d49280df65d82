"""A realistic two-voice conversation of any length, with its exact speaker reference.

Two clearly different espeak-ng voices (an American man with a low voice and a British
woman) take turns reading ``bench/long_text.txt`` in order: turns of varied length, from a
few words to about 40 seconds, with short pauses between them and some quick exchanges of
a few seconds each. The turn lengths and pauses come from a seeded random generator, so
the same arguments always give the same recording. When the text runs out it starts
again, read a little faster, so that no stretch of audio is an exact repetition of an
earlier one (exact repetitions are not what recordings contain, and they confuse a voice
model's clustering).

Each turn is synthesised alone, its leading and trailing silence cut, and placed at a
known sample, so the reference (who speaks when) is exact. The result is a stereo WAV
with one voice per channel and a little crosstalk (as a call is recorded: for
``diarize=channels``), a mono WAV of the two voices together (for ``diarize=auto``), the
reference turns, and the text that was read.

    python bench/conversation.py --minutes 10 --out /tmp/talk   # the WAVs and an RTTM
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import wave
from pathlib import Path

if __package__ in (None, ""):  # run as a file: import the benchmarks as bench.*
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import attrs
import numpy as np

from cesar_core.transcript import SpeakerTurn
from cesar_core.transcription.audio import SAMPLE_RATE, load_audio

TEXT = Path(__file__).resolve().parent / "long_text.txt"
#: espeak-ng voice, words per minute, pitch (0-99): a low American man, a British woman.
VOICES = {"SPEAKER_00": ("en-us", 150, 30), "SPEAKER_01": ("en-gb-x-rp+f4", 160, 75)}
#: Words per minute added to both voices each time the text starts again.
FASTER_PER_PASS = 12
#: A sample quieter than this (of full scale) is silence when a turn is trimmed.
SILENCE = 300 / 32768
#: How much of each voice leaks into the other channel of the stereo recording.
CROSSTALK = 0.05


@attrs.frozen
class Conversation:
    """Where the recording was written, who speaks when, and what was said."""

    stereo: Path
    mono: Path
    reference: list[SpeakerTurn]
    text: str


def turn_lengths(rng: random.Random) -> list[tuple[int, float]]:
    """The next stretch of the conversation: (words, pause after) per turn.

    Most often one turn of 10 to 110 words (about 4 to 40 s) with a pause of 0.3 to 1.2 s;
    sometimes a quick exchange of three to six turns of 4 to 12 words with pauses of 0.15
    to 0.4 s.
    """
    if rng.random() < 0.25:
        return [(rng.randint(4, 12), rng.uniform(0.15, 0.4)) for _ in range(rng.randint(3, 6))]
    words = rng.choice([rng.randint(10, 30), rng.randint(30, 60), rng.randint(60, 110)])
    return [(words, rng.uniform(0.3, 1.2))]


def speak(text: str, voice: tuple[str, int, int], directory: Path) -> np.ndarray:
    """``text`` read by espeak-ng ``voice``: 16 kHz mono float32, silence trimmed."""
    name, speed, pitch = voice
    raw = directory / "turn.wav"
    subprocess.run(
        ["espeak-ng", "-v", name, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text],
        check=True,
    )
    samples = load_audio(raw)
    loud = np.flatnonzero(np.abs(samples) > SILENCE)
    return samples[loud[0] : loud[-1] + 1]


def write_wav(path: Path, rows: np.ndarray) -> None:
    """``rows`` (channels x samples, float in [-1, 1]) as a 16-bit WAV."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(rows.shape[0])
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(rows, -1, 1) * 32767).astype("<i2").T.tobytes())


def write_rttm(path: Path, reference: list[SpeakerTurn]) -> None:
    uri = path.stem
    path.write_text(
        "".join(
            f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
            for t in reference
        )
    )


def conversation(minutes: float, directory: Path, seed: int = 0) -> Conversation:
    """Write ``minutes`` of the conversation into ``directory`` (WAVs and an RTTM)."""
    words = re.sub(r"\s+", " ", TEXT.read_text(encoding="utf-8")).split()
    rng = random.Random(seed)
    target = round(minutes * 60 * SAMPLE_RATE)
    placed: list[tuple[int, int, np.ndarray]] = []  # (speaker index, start sample, samples)
    said: list[str] = []
    at, position, speaker = round(0.5 * SAMPLE_RATE), 0, 0
    while at < target:
        for count, pause in turn_lengths(rng):
            passes, start = divmod(position, len(words))
            chunk = " ".join(words[start : start + count])
            position += min(count, len(words) - start)  # a turn never spans the wrap
            label = f"SPEAKER_{speaker:02d}"
            name, speed, pitch = VOICES[label]
            samples = speak(chunk, (name, speed + FASTER_PER_PASS * passes, pitch), directory)
            placed.append((speaker, at, samples))
            said.append(chunk)
            at += len(samples) + round(pause * SAMPLE_RATE)
            speaker = 1 - speaker
            if at >= target:
                break
    length = max(start + len(samples) for _, start, samples in placed) + SAMPLE_RATE // 2
    stereo = np.zeros((2, length), dtype=np.float32)
    for channel, start, samples in placed:
        stereo[channel, start : start + len(samples)] += samples
        stereo[1 - channel, start : start + len(samples)] += CROSSTALK * samples
    mono = np.zeros((1, length), dtype=np.float32)
    for _, start, samples in placed:
        mono[0, start : start + len(samples)] += samples
    name = f"conversation_{minutes:g}min"
    paths = directory / f"{name}_stereo.wav", directory / f"{name}_mono.wav"
    write_wav(paths[0], stereo)
    write_wav(paths[1], mono)
    reference = [
        SpeakerTurn(
            start=round(start / SAMPLE_RATE, 3),
            end=round((start + len(samples)) / SAMPLE_RATE, 3),
            speaker=f"SPEAKER_{channel:02d}",
        )
        for channel, start, samples in placed
    ]
    write_rttm(directory / f"{name}.rttm", reference)
    (directory / "turn.wav").unlink(missing_ok=True)
    return Conversation(paths[0], paths[1], reference, " ".join(said))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the recording")
    parser.add_argument("--seed", type=int, default=0, help="of the turn lengths and pauses")
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    talk = conversation(args.minutes, args.out, args.seed)
    print(f"{talk.stereo}\n{talk.mono}\n{len(talk.reference)} turns")


if __name__ == "__main__":
    main()
