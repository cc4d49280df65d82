"""The domain model of a transcription: what was asked for and what came back.

These are frozen attrs classes so that a result can be shared between threads (a worker
thread produces it, the event loop serialises it) without copies or locks. They turn into
JSON-ready dicts only through :mod:`cesar_core.convert`, so the wire shape is defined once.
"""

from __future__ import annotations

import enum
import os
from typing import Any, TypeVar

import attrs
from attrs import field, frozen

from .errors import InvalidOptionsError, UnsupportedLanguageError
from .languages import LANGUAGE_CODES, language_code

#: The model used when none is named: English ``tiny.en``, carried by a core dependency.
#: Chosen in ``bench/models.py``: about 3x faster than ``base`` on a 2-core CPU at a similar
#: English word error rate, and the only model a plain ``pip install cesar`` brings.
DEFAULT_MODEL = "tiny.en"


class Task(enum.StrEnum):
    """What to do with the speech: write it down, or write it down in English."""

    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


class Diarize(enum.StrEnum):
    """How speakers are told apart: ``auto`` by a model that listens to the voices,
    ``channels`` by the channel of a stereo recording that carries the speech (one person a
    channel, as calls and interviews are often recorded), with no model at all."""

    AUTO = "auto"
    CHANNELS = "channels"


class Device(enum.StrEnum):
    """Where the model runs; ``auto`` picks CUDA when CTranslate2 sees a GPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


#: CTranslate2 compute types, plus ``auto`` (int8 on CPU, float16 on CUDA).
COMPUTE_TYPES = frozenset(
    {
        "auto",
        "default",
        "int8",
        "int8_float32",
        "int8_float16",
        "int8_bfloat16",
        "int16",
        "float16",
        "bfloat16",
        "float32",
    }
)


def _check_language(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and value not in LANGUAGE_CODES:
        raise UnsupportedLanguageError(
            f"Unknown language code {value!r}.",
            hint="Use a code such as 'en', 'fr' or 'es', or a name such as 'German', or leave "
            "the language unset to detect it.",
            field=attribute.name,
        )


def _to_language(value: Any) -> Any:
    """A language name (``German``) becomes its code (``de``), as whisper's CLI takes both."""
    return (language_code(value) or value) if isinstance(value, str) else value


def _to_languages(value: Any) -> tuple[str, ...]:
    """``["de", "French"]`` or ``"de,fr"`` as codes, in order, without repeats."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    codes = [_to_language(str(item).strip()) for item in items if str(item).strip()]
    return tuple(dict.fromkeys(codes))


def _check_languages(_: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for code in value:
        _check_language(_, attribute, code)  # names the list as the field at fault


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value <= 0:
        raise InvalidOptionsError(
            f"{attribute.name} must be greater than 0, not {value}.", field=attribute.name
        )


def _not_negative(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value < 0:
        raise InvalidOptionsError(f"{attribute.name} must be 0 or more, not {value}.")


def _check_compute_type(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in COMPUTE_TYPES:
        raise InvalidOptionsError(
            f"Unknown compute type {value!r}.",
            hint=f"Choose one of: {', '.join(sorted(COMPUTE_TYPES))}.",
        )


def _probability(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not 0 <= value <= 1:
        raise InvalidOptionsError(f"{attribute.name} must be between 0 and 1, not {value}.")


def _check_temperature(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not 0 <= value <= 1:
        raise InvalidOptionsError(f"temperature must be between 0 and 1, not {value}.")


_E = TypeVar("_E", bound=enum.StrEnum)


def _member(kind: type[_E], value: Any) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise InvalidOptionsError(
            f"Unknown {kind.__name__.lower()} {value!r}.", hint=f"Choose one of: {choices}."
        ) from None


def _to_task(value: Any) -> Task:
    return _member(Task, value)


def _to_device(value: Any) -> Device:
    return _member(Device, value)


def _to_diarize(value: Any) -> Diarize | None:
    return None if value is None else _member(Diarize, value)


def default_cpu_threads() -> int:
    """Half the logical cores, at least 1 and at most 4.

    Measured in ``bench/transcribe.py``: on small machines the second hardware thread of a
    core slows int8 decoding down, and past 4 threads a single stream gains almost nothing.
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@frozen(kw_only=True)
class TranscribeOptions:
    """Every knob of one transcription. Invalid values raise :class:`InvalidOptionsError`."""

    model: str = DEFAULT_MODEL
    language: str | None = field(default=None, converter=_to_language, validator=_check_language)
    #: Detection picks among these languages only (empty: any); see docs/library.md.
    languages: tuple[str, ...] = field(
        default=(), converter=_to_languages, validator=_check_languages
    )
    #: Detect the language again for every 30 seconds decoded (faster-whisper's
    #: ``multilingual``), for recordings that switch language; segments say theirs.
    multilingual: bool = False
    task: Task = field(default=Task.TRANSCRIBE, converter=_to_task)
    word_timestamps: bool = False
    vad_filter: bool = False
    beam_size: int = field(default=5, validator=_positive)
    #: ``None`` keeps whisper's fallback schedule (0.0, 0.2, ... 1.0 on failed decodes).
    temperature: float | None = field(default=None, validator=_check_temperature)
    initial_prompt: str | None = None
    #: faster-whisper's hallucination guards, with its meaning and defaults (docs/library.md).
    compression_ratio_threshold: float | None = field(default=2.4, validator=_positive)
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = field(default=0.6, validator=_probability)
    condition_on_previous_text: bool = True
    hallucination_silence_threshold: float | None = field(default=None, validator=_positive)
    clip_start: float | None = field(default=None, validator=_not_negative)
    clip_end: float | None = field(default=None, validator=_positive)
    device: Device = field(default=Device.AUTO, converter=_to_device)
    compute_type: str = field(default="auto", validator=_check_compute_type)
    #: 0 means :func:`default_cpu_threads`.
    cpu_threads: int = field(default=0, validator=_not_negative)
    batched: bool = False
    batch_size: int = field(default=8, validator=_positive)
    #: Label who speaks (``None``: no speakers); see :class:`Diarize`.
    diarize: Diarize | None = field(default=None, converter=_to_diarize)
    #: The number of speakers when it is known; or bounds on it.
    num_speakers: int | None = field(default=None, validator=_positive)
    min_speakers: int | None = field(default=None, validator=_positive)
    max_speakers: int | None = field(default=None, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not self.model.strip():
            raise InvalidOptionsError("The model name is empty.", hint="Run `cesar models`.")
        _check_speaker_counts(self)
        _check_language_choice(self)
        if (
            self.clip_start is not None
            and self.clip_end is not None
            and self.clip_end <= self.clip_start
        ):
            raise InvalidOptionsError(
                f"clip_end ({self.clip_end}) must be after clip_start ({self.clip_start})."
            )


def _check_language_choice(options: TranscribeOptions) -> None:
    chosen = options.language
    if chosen is not None and options.languages and chosen not in options.languages:
        raise InvalidOptionsError(
            f"language {chosen!r} is not one of languages ({', '.join(options.languages)}).",
            hint="Give either the language or the languages to choose from.",
        )
    if options.multilingual and options.batched:
        raise InvalidOptionsError(
            "multilingual (a language per segment) does not work with batched decoding yet.",
            hint="Leave batched off for recordings that switch language.",
        )
    if options.hallucination_silence_threshold is not None and not options.word_timestamps:
        raise InvalidOptionsError(
            "hallucination_silence_threshold needs word timestamps: faster-whisper finds "
            "the silences from the words' times.",
            hint="Turn word_timestamps on as well.",
        )


def _check_speaker_counts(options: TranscribeOptions) -> None:
    counts = {
        "num_speakers": options.num_speakers,
        "min_speakers": options.min_speakers,
        "max_speakers": options.max_speakers,
    }
    given = [name for name, value in counts.items() if value is not None]
    if given and options.diarize is None:
        raise InvalidOptionsError(
            f"{', '.join(given)} only apply when speakers are asked for.",
            hint="Set diarize to 'auto' (or 'channels'), or leave the speaker counts out.",
            field=given[0],
        )
    low, high, exact = options.min_speakers, options.max_speakers, options.num_speakers
    if low is not None and high is not None and low > high:
        raise InvalidOptionsError(
            f"min_speakers ({low}) is more than max_speakers ({high}).", field="min_speakers"
        )
    if exact is not None and not (low or exact) <= exact <= (high or exact):
        raise InvalidOptionsError(
            f"num_speakers ({exact}) is outside min_speakers..max_speakers ({low}..{high}).",
            field="num_speakers",
        )


@frozen(kw_only=True)
class Word:
    """One word with its timing in seconds from the start of the audio; ``speaker`` is
    the label of who said it when speakers were asked for."""

    start: float
    end: float
    word: str
    probability: float
    speaker: str | None = None


@frozen(kw_only=True)
class Segment:
    """A stretch of speech, usually a sentence or a phrase, timed in seconds."""

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    speaker: str | None = None
    #: How well gzip compresses the text: whisper retries a decode above 2.4 (a loop).
    compression_ratio: float = 0.0
    #: The sampling temperature of the decode kept (above 0 after whisper's fallback).
    temperature: float | None = None
    #: The model's token ids of the text, and the 30-second window it was decoded in (in
    #: 10 ms frames from the start of the audio), as whisper and OpenAI report them.
    tokens: tuple[int, ...] = ()
    seek: int = 0
    #: The language the segment was decoded as (detected per segment with ``multilingual``).
    language: str | None = None
    #: What the engine doubts of it: ``low_logprob``, ``high_compression``, ``no_speech``
    #: (past the options' thresholds) or ``repetition`` (a loop was collapsed).
    flags: tuple[str, ...] = ()


@frozen(kw_only=True)
class LanguageScore:
    """A language the audio may be in, and how likely the model finds it."""

    language: str
    probability: float


@frozen(kw_only=True)
class DetectedLanguage:
    """The language a model hears in a clip, as transcribing the clip alone would report it:
    the likeliest language, its probability and the likeliest others
    (:attr:`Transcript.top_languages`); see :mod:`cesar_core.detection`."""

    language: str
    probability: float
    top_languages: tuple[LanguageScore, ...] = ()


@frozen(kw_only=True)
class SpeakerTurn:
    """A stretch of audio in which one speaker talks, as a diarizer finds it (seconds from
    the start of the audio, like segments)."""

    start: float
    end: float
    speaker: str


@frozen(kw_only=True)
class Speaker:
    """One voice of a transcript: its label (``SPEAKER_00``), the name a person gave it,
    and how long it talks, in seconds."""

    id: str
    name: str | None = None
    talk_time: float = 0.0

    def label(self, number: int) -> str:
        """What formats show: the name given, or ``Speaker <number>``."""
        return self.name or f"Speaker {number}"


@frozen(kw_only=True)
class Transcript:
    """The result of a transcription.

    ``duration`` is the length of the audio that was transcribed (after clipping), and
    ``warnings`` carries what the caller should know but that did not stop the work (pure
    silence, for example).
    """

    text: str
    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    duration: float
    model: str
    task: Task = Task.TRANSCRIBE
    warnings: tuple[str, ...] = ()
    #: Who speaks, in order of first appearance; empty unless speakers were asked for.
    speakers: tuple[Speaker, ...] = ()
    #: The likeliest languages when it was detected, likeliest first (``language`` first).
    top_languages: tuple[LanguageScore, ...] = ()

    @property
    def words(self) -> tuple[Word, ...]:
        """Every word of every segment, empty unless word timestamps were asked for."""
        return tuple(word for segment in self.segments for word in segment.words)

    def speaker_labels(self) -> dict[str, str]:
        """Each speaker's label as formats show it: its name, or ``Speaker 1``, ``Speaker
        2``... in order of first appearance."""
        return {s.id: s.label(number) for number, s in enumerate(self.speakers, start=1)}

    def renamed(self, names: dict[str, str]) -> Transcript:
        """This transcript with speakers named (``{"SPEAKER_00": "Alice"}``); an empty name
        takes a given name back. Unknown labels are refused: a typo must not pass silently."""
        for label, name in names.items():
            if len(name) > 100 or not name.isprintable():
                raise InvalidOptionsError(
                    f"The name for {label} must be at most 100 printable characters.",
                    hint="Give a short plain name, such as 'Alice'.",
                )
        known = {speaker.id for speaker in self.speakers}
        unknown = sorted(set(names) - known)
        if unknown:
            raise InvalidOptionsError(
                f"No speaker is labelled {', '.join(map(repr, unknown))}.",
                hint=f"The speakers are: {', '.join(sorted(known)) or 'none (not diarized)'}.",
            )
        speakers = tuple(
            attrs.evolve(s, name=(names[s.id].strip() or None) if s.id in names else s.name)
            for s in self.speakers
        )
        return attrs.evolve(self, speakers=speakers)
