"""Regenerates the committed speaker fixtures (needs espeak-ng and ffmpeg).

- ``speakers_three.opus``: three clearly different espeak-ng voices taking turns, mono;
  ``speakers_three.rttm`` says who speaks when (the reference for diarization error rate).
- ``call_stereo.opus``: two voices, each on a channel of its own, as calls and interviews
  are recorded; ``call_stereo.rttm`` is its reference (SPEAKER_00 is the left channel).

Each turn is synthesised alone, its leading and trailing silence cut, and placed with a
pause before the next, so the reference times are exact sample counts.
Run from anywhere: ``python tests/data/make_speakers.py``.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
RATE = 16_000
PAUSE_S = 0.7
#: espeak-ng voice, words per minute, pitch (0-99): a low man, a high woman, a British man.
VOICES = {
    "SPEAKER_00": ("en-us", 150, 30),
    "SPEAKER_01": ("en-us+f4", 165, 85),
    "SPEAKER_02": ("en-gb-x-rp+m3", 135, 55),
}
THREE = [
    ("SPEAKER_00", "Good morning everyone, thank you for joining the planning meeting today."),
    ("SPEAKER_01", "Thanks for having me. I have the numbers from the last quarter ready."),
    ("SPEAKER_02", "Before we start, could we agree on the agenda for the next hour?"),
    ("SPEAKER_00", "Of course. First the budget, then the new office, then questions."),
    ("SPEAKER_01", "The budget is in good shape, we spent less than we planned."),
    ("SPEAKER_02", "That is good news. What about the move to the new office?"),
    ("SPEAKER_00", "The move is planned for the spring, if the builders finish on time."),
]
CALL = [
    ("SPEAKER_00", "Hello, you are through to the help desk, how can I help you today?"),
    ("SPEAKER_01", "Hi, my internet connection keeps dropping every few minutes."),
    ("SPEAKER_00", "I am sorry to hear that. Have you tried restarting the router?"),
    ("SPEAKER_01", "Yes, twice this morning, and it still drops after a while."),
    ("SPEAKER_00", "All right, I will run a line test from here, please stay on the call."),
]


def speak(speaker: str, text: str, work: Path) -> np.ndarray:
    voice, speed, pitch = VOICES[speaker]
    raw = work / "turn.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text],
        check=True,
    )
    pcm = subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(raw),
            "-ac",
            "1",
            "-ar",
            str(RATE),
            "-f",
            "s16le",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples) > 300)
    return samples[loud[0] : loud[-1] + 1]


def build(
    turns: list[tuple[str, str]], work: Path
) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """The turns' samples with their start times, and RTTM lines."""
    placed, rttm, at = [], [], round(0.5 * RATE)
    for speaker, text in turns:
        samples = speak(speaker, text, work)
        placed.append((speaker, at, samples))
        start, length = at / RATE, len(samples) / RATE
        rttm.append(f"SPEAKER {{uri}} 1 {start:.3f} {length:.3f} <NA> <NA> {speaker} <NA> <NA>")
        at += len(samples) + round(PAUSE_S * RATE)
    return placed, rttm, at


def write(name: str, rows: np.ndarray, rttm: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "all.wav"
        with wave.open(str(wav), "wb") as out:
            out.setnchannels(rows.shape[0])
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(rows.T.astype(np.int16).tobytes())
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(wav),
                "-c:a",
                "libopus",
                "-b:a",
                "32k" if rows.shape[0] == 1 else "48k",
                str(HERE / f"{name}.opus"),
            ],
            check=True,
        )
    (HERE / f"{name}.rttm").write_text("\n".join(line.format(uri=name) for line in rttm) + "\n")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        placed, rttm, length = build(THREE, work)
        mono = np.zeros((1, length + RATE // 2), dtype=np.int16)
        for _, at, samples in placed:
            mono[0, at : at + len(samples)] = samples
        write("speakers_three", mono, rttm)
        placed, rttm, length = build(CALL, work)
        stereo = np.zeros((2, length + RATE // 2), dtype=np.int16)
        # A little of each voice leaks into the other channel, as on a real call.
        for speaker, at, samples in placed:
            own = int(speaker[-1])
            stereo[own, at : at + len(samples)] = samples
            stereo[1 - own, at : at + len(samples)] = samples // 20
        write("call_stereo", stereo, rttm)


if __name__ == "__main__":
    main()
