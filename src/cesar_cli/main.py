"""The ``cesar`` command group and how every command reports failure.

Exit codes: 0 success, 1 a failure (bad audio, missing model, engine error), 2 a usage error
(unknown option, invalid value). Failures print one line that says what went wrong and what
to do; ``--verbose`` adds the traceback of unexpected errors.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from cesar_core import CesarError, InvalidOptionsError, __version__


class CesarGroup(click.Group):
    """A click group that turns library errors into one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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


@click.group(cls=CesarGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="cesar")
def cli() -> None:
    """Cesar: offline speech-to-text with faster-whisper.

    Transcribe files directly with `cesar transcribe`, list the models available offline with
    `cesar models`, serve the HTTP API with `cesar serve`, run queued jobs with `cesar worker`
    and manage them with `cesar jobs`.
    Settings come from CESAR_* environment variables (see docs/settings.md).
    """


def _register() -> None:
    from . import jobs, models, plugins, serve, transcribe, worker

    cli.add_command(transcribe.transcribe)
    cli.add_command(models.models)
    cli.add_command(worker.worker)
    cli.add_command(jobs.jobs)
    cli.add_command(plugins.plugins)
    cli.add_command(serve.serve)


_register()
