"""``cesar plugins``: which plugins are loaded and which hooks each implements."""

from __future__ import annotations

import json
from typing import Any

import click

from cesar_core.plugins import BUILTIN_PLUGINS, get_manager


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json: bool) -> None:
    """List loaded plugins: external ones (entry points of group "cesar") and built-ins.

    Choose external plugins with CESAR_PLUGINS=name1,name2 (empty: none) and block some
    with CESAR_BLOCK_PLUGINS=name.
    """
    manager = get_manager()
    rows: list[dict[str, Any]] = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:  # blocked with CESAR_BLOCK_PLUGINS
            rows.append({"name": name, "builtin": False, "blocked": True, "hooks": []})
            continue
        hooks = sorted(
            caller.name for caller in manager.get_hookcallers(plugin) or () if caller.name
        )
        distribution = next(
            (dist.project_name for p, dist in manager.list_plugin_distinfo() if p is plugin),
            None,
        )
        rows.append(
            {
                "name": name,
                "builtin": name in BUILTIN_PLUGINS,
                "blocked": False,
                "distribution": distribution,
                "hooks": hooks,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if row["blocked"]:
            click.echo(f"{row['name']}  (blocked by CESAR_BLOCK_PLUGINS)")
            continue
        origin = "built-in" if row["builtin"] else (row["distribution"] or "external")
        click.echo(f"{row['name']}  ({origin})  {', '.join(row['hooks'])}")
