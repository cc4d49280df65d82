"""The one rule of the layout: the core knows nothing of HTTP, the terminal or PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_importing_the_core_pulls_in_no_adapter() -> None:
    code = (
        "import sys, cesar_core; "
        "bad = [m for m in ('click', 'rich', 'fastapi', 'cesar_cli', 'cesar_http', 'psycopg', "
        "'cesar_postgres') "
        "if m in sys.modules]; print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_loading_the_plugins_imports_no_database_driver() -> None:
    """The PostgreSQL plugin is always registered, but psycopg loads only with a
    postgresql:// URL: a machine without the ``postgres`` extra pays nothing for it."""
    code = (
        "import sys; from cesar_core.plugins import get_manager; get_manager(); "
        "print('cesar_postgres.plugin' in sys.modules, 'psycopg' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "False"]
