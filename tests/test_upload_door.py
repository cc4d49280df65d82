"""What an upload meets at the door: a header probe, not a decode.

A file that is not audio at all (or has no sound) is still refused at once with a 4xx; a
file cut short behind a good header is accepted, and its job ends with ``truncated_audio``
(permanent, not retried) when the worker decodes it. Real ``cesar serve`` processes, the
real model, real truncated files.
"""

from __future__ import annotations

import io
import os
import socket
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cesar_core.errors import AudioError, NoAudioStreamError
from cesar_core.transcription.audio import AudioStream
from cesar_core.transcription.probe import looks_like_audio, probe_audio

from .conftest import DATA
from .http_helpers import serving, wait_for


def cut(tmp_path: Path, name: str, keep: float) -> Path:
    """``name`` of the fixtures with only its first ``keep`` of bytes: the header still
    announces all of it."""
    whole = (DATA / name).read_bytes()
    path = tmp_path / f"cut_{name}"
    path.write_bytes(whole[: int(len(whole) * keep)])
    return path


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server with its embedded worker; uploads over 100 kB go to file storage."""
    root = tmp_path_factory.mktemp("door")
    with (
        serving(root, CESAR_INLINE_AUDIO_BYTES="100000") as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


def post(client: httpx.Client, path: Path) -> httpx.Response:
    with path.open("rb") as handle:
        return client.post("/transcribe", files={"file": (path.name, handle)})


@pytest.mark.parametrize(
    ("name", "keep"),
    [("speech_en.wav", 0.4), ("speech_en.flac", 0.5), ("speech_en.mp3", 0.5)],
)
def test_a_truncated_upload_is_accepted_and_its_job_ends_truncated(
    api: httpx.Client, tmp_path: Path, name: str, keep: float
) -> None:
    path = cut(tmp_path, name, keep)
    accepted = post(api, path)
    assert accepted.status_code == 202, accepted.text
    job = wait_for(api, accepted.json()["id"])
    assert job["status"] == "error", job
    error = job["error"]
    assert isinstance(error, dict)
    assert error["code"] == "truncated_audio", error
    assert f"{path.name} is truncated: it announces" in error["message"]
    assert "clip_end" in error["message"]  # the hint is part of it
    assert job["attempts"] == 1  # permanent: not tried again


def test_what_is_not_audio_is_still_refused_at_the_door(api: httpx.Client, tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp3"
    notes.write_text("not audio\n" * 50)
    video = DATA / "video_only.mp4"
    no_index = cut(tmp_path, "speech_en.m4a", 0.1)  # its index is at the end: cannot open
    for path, code in (
        (notes, "invalid_audio"),
        (video, "no_audio_stream"),
        (no_index, "invalid_audio"),
    ):
        refused = post(api, path)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == code
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    refused = post(api, empty)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "empty_audio"


def test_the_probe_reads_headers_only(tmp_path: Path) -> None:
    """It passes a truncated file (decoding it would not) and refuses what is no audio."""
    truncated = cut(tmp_path, "speech_en.wav", 0.4)
    probe_audio(truncated, "cut.wav")
    probe_audio(io.BytesIO(truncated.read_bytes()), "cut.wav")
    with pytest.raises(AudioError, match="is truncated"):
        AudioStream(truncated).close()
    with pytest.raises(NoAudioStreamError):
        probe_audio(DATA / "video_only.mp4", "video_only.mp4")
    with pytest.raises(AudioError, match=r"notes\.txt is not an audio or video file"):
        probe_audio(io.BytesIO(b"not audio\n" * 50), "notes.txt")


def test_the_look_on_the_event_loop_passes_audio_and_refuses_nothing(api: httpx.Client) -> None:
    """The start of an upload held in memory is looked at on the event loop: common formats
    pass there. What does not pass is left to the whole probe in a thread, which accepts an
    MP4 whose index comes last and refuses the rest as before (see above)."""
    for name in ("speech_en.opus", "speech_en.wav", "speech_en.mp3", "speech_en.flac"):
        assert looks_like_audio((DATA / name).read_bytes(), name), name
    m4a = DATA / "speech_en.m4a"  # 75 kB, held in memory: its index is past the start
    assert not looks_like_audio(m4a.read_bytes(), m4a.name)
    probe_audio(io.BytesIO(m4a.read_bytes()), m4a.name)
    accepted = post(api, m4a)
    assert accepted.status_code == 202, accepted.text
    assert not looks_like_audio(os.urandom(1024**2), "noise.mp3")
    assert not looks_like_audio((DATA / "video_only.mp4").read_bytes(), "video_only.mp4")
    assert not looks_like_audio(b"", "empty.wav")


class CountingReads(io.BytesIO):
    """Bytes that count how much of them is read."""

    read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk


def test_the_probe_does_not_analyse_seconds_of_a_wav() -> None:
    """FFmpeg's default look at a WAV reads 5 s of it in small packets (20 ms of work); the
    door's probe stops after a few kilobytes of the stream. (It counts bytes, not time, so
    that a busy machine cannot make it pass or fail.)"""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(2 * 16000 * 60))
    probed = CountingReads(out.getvalue())
    probe_audio(probed, "minute.wav")
    opened = CountingReads(out.getvalue())
    AudioStream(opened, name="minute.wav", check_tail=False).close()
    assert opened.read_bytes > 2 * 16000 * 5  # what the probe is spared
    assert probed.read_bytes < opened.read_bytes * 0.6


def _form(audio: bytes, name: str) -> tuple[str, bytes]:
    boundary = "doorboundary1234"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return (
        f"multipart/form-data; boundary={boundary}",
        head + audio + f"\r\n--{boundary}--\r\n".encode(),
    )


def test_slow_short_uploads_keep_no_other_upload_out(tmp_path: Path) -> None:
    """Clients that send half a body and stall (a dozen of them) must not keep a quick
    upload out, and are accepted when they finish: nothing at the door may make uploads
    wait on each other (a limit on uploads in progress held while a body arrives would)."""
    audio = (DATA / "speech_en.opus").read_bytes()
    content_type, body = _form(audio, "speech_en.opus")
    stalled = []
    with serving(tmp_path, "--no-worker") as url:
        host, port = url.removeprefix("http://").split(":")
        for _ in range(12):
            sock = socket.create_connection((host, int(port)), timeout=60)
            sock.sendall(
                f"POST /transcribe HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body[: len(body) // 2]
            )
            stalled.append(sock)
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                quick = client.post("/transcribe", files={"file": ("quick.opus", audio)})
                assert quick.status_code == 202, quick.text
            for sock in stalled:
                sock.sendall(body[len(body) // 2 :])
            answers = [sock.makefile("rb").read() for sock in stalled]
        finally:
            for sock in stalled:
                sock.close()
        assert [answer.split(b" ", 2)[1] for answer in answers] == [b"202"] * 12
        with httpx.Client(base_url=url, timeout=30) as client:
            assert len(client.get("/jobs", params={"limit": 100}).json()["jobs"]) == 13
