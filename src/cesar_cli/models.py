"""``cesar models``: what can be resolved offline, and from where."""

from __future__ import annotations

import json

import click

from cesar_core import ModelResolver, Settings, to_dict
from cesar_core.plugins import get_manager


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option(
    "--allow-download",
    is_flag=True,
    default=None,
    help="Also list the models the hub could provide (CESAR_ALLOW_DOWNLOAD).",
)
def models(as_json: bool, allow_download: bool | None) -> None:
    """List every model Cesar can resolve and where it comes from.

    Sources are asked in order: a directory you name with --model PATH, packages that carry
    a model, Cesar's cache, and the hub (only when downloads are allowed). A model listed
    with a note but no location needs that note followed first (usually a pip install).
    """
    settings = Settings.load(allow_download=allow_download)
    resolver = ModelResolver.from_plugins(get_manager(), settings)
    seen: set[str] = set()
    rows = []
    for location in resolver.available():
        row = to_dict(location)
        row["path"] = None if location.path is None else str(location.path)
        row["default"] = location.name == settings.model
        row["shadowed"] = location.name in seen and location.path is not None
        if location.path is not None:
            seen.add(location.name)
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = ("MODEL", "SOURCE", "LANGUAGES", "WHERE")
    table = [header]
    for row in rows:
        if row["shadowed"]:  # a name already provided by an earlier source
            continue
        languages = {True: "many", False: "English", None: "?"}[row["multilingual"]]
        name = row["name"] + (" (default)" if row["default"] else "")
        where = row["path"] or ""
        if row["note"]:
            where = f"{where}  [{row['note']}]" if where else row["note"]
        table.append((name, row["source"], languages, where))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:3])) + "  " + r[3])
