"""The ``cesar`` command group and how every command reports failure.

Exit codes: 0 success, 1 a failure (bad audio, missing model, engine error), 2 a usage error
(unknown option, invalid value). Failures print one line that says what went wrong and what
to do; ``--verbose`` adds the traceback of unexpected errors.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any, NoReturn

import click

from cesar_core import CesarError, InvalidOptionsError, __version__

#: Each command and the module that holds it, imported only when the command runs or
#: ``--help`` lists them: ``cesar jobs list`` does not load PyAV and NumPy for ``transcribe``.
COMMANDS = ("jobs", "models", "plugins", "serve", "transcribe", "worker")


class CesarGroup(click.Group):
    """A click group that turns library errors into one-line messages and exit codes, and
    imports each command's module on first use (click's lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module = importlib.import_module(f"{__package__}.{cmd_name}")
            self.add_command(getattr(module, cmd_name))
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError:  # `cesar --help | head -1`
            _reader_gone()

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _reader_gone()
        except InvalidOptionsError as exc:
            raise click.UsageError(str(exc)) from None
        except CesarError as exc:
            raise click.ClickException(str(exc)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except Exception as exc:
            if logging.getLogger("cesar_core").isEnabledFor(logging.DEBUG):
                raise
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {exc}. Rerun with -vv for the traceback, "
                "and report it if it persists."
            ) from None


def _reader_gone() -> NoReturn:
    """End quietly when what reads our output has stopped (``cesar jobs list | head -2``).

    As Unix tools killed by SIGPIPE do, exit with 141 (128 + SIGPIPE), so that a pipeline
    under ``set -o pipefail`` still sees it. Standard output is pointed at /dev/null first:
    Python's final flush of what is left would otherwise fail again and print a traceback.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    sys.exit(141)


@click.group(cls=CesarGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="cesar")
def cli() -> None:
    """Cesar: offline speech-to-text with faster-whisper.

    Transcribe files directly with `cesar transcribe`, list the models available offline with
    `cesar models`, serve the HTTP API with `cesar serve`, run queued jobs with `cesar worker`
    and manage them with `cesar jobs`.
    Settings come from CESAR_* environment variables (see docs/settings.md).
    """
