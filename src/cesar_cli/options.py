"""Options shared by several commands."""

from __future__ import annotations

import click

store_option = click.option(
    "--store",
    metavar="URL",
    help="Job store URL. [CESAR_STORE; default: SQLite in the data directory]",
)

storage_option = click.option(
    "--storage",
    metavar="URL",
    help="Where uploaded audio waits for a worker: postgresql://... when the nodes share no "
    "disk. [CESAR_STORAGE; default: files in the data directory]",
)
