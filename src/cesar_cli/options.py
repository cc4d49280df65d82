"""Options shared by several commands."""

from __future__ import annotations

import click

store_option = click.option(
    "--store",
    metavar="URL",
    help="Job store URL. [CESAR_STORE; default: SQLite in the data directory]",
)
