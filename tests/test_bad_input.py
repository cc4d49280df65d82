"""Bad input: every case ends in a clear error (or, for silence, an empty transcript)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from cesar_core import (
    AudioError,
    AudioNotFoundError,
    EmptyAudioError,
    InvalidOptionsError,
    ModelNotFoundError,
    NoAudioStreamError,
    TranscribeOptions,
    TranscriptionError,
    TruncatedAudioError,
    UnsupportedLanguageError,
    WhisperTranscriber,
)


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def transcribe(transcriber: WhisperTranscriber, path: Path, **options: object):
    return transcriber.transcribe(path, TranscribeOptions(**options))  # type: ignore[arg-type]


def test_missing_file(transcriber: WhisperTranscriber, tmp_path: Path) -> None:
    with pytest.raises(AudioNotFoundError, match=r"nope\.wav does not exist\. Check the path"):
        transcribe(transcriber, tmp_path / "nope.wav")


def test_directory(transcriber: WhisperTranscriber, tmp_path: Path) -> None:
    with pytest.raises(AudioNotFoundError, match=r"is a directory.*cesar transcribe .*\*\.mp3"):
        transcribe(transcriber, tmp_path)


def test_empty_file(transcriber: WhisperTranscriber, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp3"
    empty.touch()
    with pytest.raises(EmptyAudioError, match=r"empty\.mp3 is empty \(0 bytes\)"):
        transcribe(transcriber, empty)


def test_non_audio_bytes(transcriber: WhisperTranscriber, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("these are meeting notes, not audio\n" * 50)
    with pytest.raises(AudioError) as error:
        transcribe(transcriber, text)
    assert error.value.code == "invalid_audio"
    assert "is not an audio or video file that can be decoded" in str(error.value)
    assert "Supported: wav, flac, mp3" in str(error.value)


def test_video_without_audio_track(transcriber: WhisperTranscriber, data: Path) -> None:
    with pytest.raises(NoAudioStreamError, match="a video with no audio track"):
        transcribe(transcriber, data / "video_only.mp4")


@pytest.mark.parametrize(("suffix", "keep"), [("wav", 0.4), ("flac", 0.5)])
def test_truncated_audio(
    transcriber: WhisperTranscriber, data: Path, tmp_path: Path, suffix: str, keep: float
) -> None:
    whole = (data / f"speech_en.{suffix}").read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(whole[: int(len(whole) * keep)])
    with pytest.raises(TruncatedAudioError) as error:
        transcribe(transcriber, cut)
    assert "is truncated: it announces 8.4 s of audio" in str(error.value)
    # The hint works: the part that is there can still be transcribed.
    until = float(str(error.value).split("pass clip_end ")[1].split(" ")[0].rstrip("."))
    assert transcribe(transcriber, cut, clip_end=until).text


def test_truncated_container_without_index(
    transcriber: WhisperTranscriber, data: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.m4a"
    cut.write_bytes((data / "speech_en.m4a").read_bytes()[:8000])
    with pytest.raises(AudioError, match="or it is damaged"):
        transcribe(transcriber, cut)


def test_pure_silence_gives_empty_transcript_with_warning(
    transcriber: WhisperTranscriber, tmp_path: Path
) -> None:
    silent = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 5))
    seen: list[float] = []
    result = transcriber.transcribe(silent, TranscribeOptions(), progress=seen.append)
    assert result.text == ""
    assert result.segments == ()
    assert result.duration == pytest.approx(5.0)
    assert len(result.warnings) == 1
    assert "is silent" in result.warnings[0]
    assert seen == [1.0]


def test_wav_with_no_samples(transcriber: WhisperTranscriber, tmp_path: Path) -> None:
    with pytest.raises(EmptyAudioError, match="contains no audio samples"):
        transcribe(transcriber, write_wav(tmp_path / "zero.wav", np.zeros(0)))


def test_clip_start_past_the_end(transcriber: WhisperTranscriber, data: Path) -> None:
    with pytest.raises(InvalidOptionsError, match=r"clip_start \(60 s\) is beyond the end"):
        transcribe(transcriber, data / "speech_en.wav", clip_start=60.0)


def test_unknown_language_code() -> None:
    with pytest.raises(UnsupportedLanguageError, match="Unknown language code 'zz'"):
        TranscribeOptions(language="zz")


@pytest.mark.parametrize("options", [{"language": "fr"}, {"task": "translate"}])
def test_english_only_model_refuses_other_languages(
    transcriber: WhisperTranscriber, data: Path, options: dict[str, str]
) -> None:
    with pytest.raises(UnsupportedLanguageError) as error:
        transcribe(transcriber, data / "speech_en.wav", **options)
    assert "understands English only" in str(error.value)
    assert 'model="base"' in str(error.value)  # the option, as any caller names it


def test_a_compute_type_the_device_lacks_names_the_option(
    transcriber: WhisperTranscriber, data: Path
) -> None:
    with pytest.raises(TranscriptionError, match="compute type 'float16'") as error:
        transcribe(transcriber, data / "speech_en.wav", device="cpu", compute_type="float16")
    assert error.value.hint
    assert 'compute_type="auto"' in error.value.hint
    assert "--" not in error.value.hint


def test_unknown_model_names_the_available_ones(
    transcriber: WhisperTranscriber, data: Path
) -> None:
    with pytest.raises(ModelNotFoundError) as error:
        transcribe(transcriber, data / "speech_en.wav", model="large-v3")
    message = str(error.value)
    assert "Model 'large-v3' is not available offline" in message
    assert "base, tiny.en" in message
    assert "allow_download" in message
    assert "cesar models" in message
    assert " --" not in message  # the core names options, not one adapter's flags


def test_missing_model_directory(transcriber: WhisperTranscriber, data: Path, tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match=r"The model directory .* does not exist"):
        transcribe(transcriber, data / "speech_en.wav", model=str(tmp_path / "nothing"))
    (tmp_path / "half").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"needs model\.bin and config\.json"):
        transcribe(transcriber, data / "speech_en.wav", model=str(tmp_path / "half"))


def test_truncated_wav_as_an_open_file(
    transcriber: WhisperTranscriber, data: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.wav"
    cut.write_bytes((data / "speech_en.wav").read_bytes()[:100_000])
    with cut.open("rb") as handle, pytest.raises(TruncatedAudioError, match=r"announces 8\.4 s"):
        transcriber.transcribe(handle, TranscribeOptions())


def test_truncation_is_found_before_transcribing(data: Path, tmp_path: Path) -> None:
    from cesar_core.transcription.audio import AudioStream

    cut = tmp_path / "cut.flac"
    cut.write_bytes((data / "speech_en.flac").read_bytes()[:70_000])
    with pytest.raises(TruncatedAudioError):
        AudioStream(cut)  # opening alone, no decoding of samples for the model
    with AudioStream(data / "speech_en.flac") as whole:
        assert whole.declared == pytest.approx(8.406, abs=0.01)
