"""The Rich progress bar of ``cesar transcribe``: percent of audio, speed and time left.

Shown only on an interactive terminal, never when stderr is piped, with ``NO_COLOR`` set or
with ``--quiet``, so logs and scripts get clean output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RealtimeColumn(ProgressColumn):
    """Seconds of audio transcribed per second of wall time."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0 or not task.completed:
            return Text("  -  x realtime", style="progress.data.speed")
        return Text(f"{task.completed / elapsed:5.1f}x realtime", style="progress.data.speed")


def wanted(quiet: bool) -> bool:
    """Whether a progress bar should be drawn at all."""
    return not quiet and "NO_COLOR" not in os.environ and sys.stderr.isatty()


@contextmanager
def progress_bar(
    label: str, duration: float | None, enabled: bool
) -> Iterator[Callable[[float], None] | None]:
    """Yield a callback taking the fraction done, or None when no bar should be shown."""
    if not enabled:
        yield None
        return
    total = duration or 1.0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        RealtimeColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda fraction: bar.update(task, completed=fraction * total)
