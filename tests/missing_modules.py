"""Run a subprocess as if some packages were not installed, without uninstalling them.

:func:`without` writes a ``sitecustomize.py`` (which Python imports at start-up from any
``sys.path`` entry) that puts a finder first on ``sys.meta_path``: it refuses the named
packages and their submodules with ``ModuleNotFoundError``, as a missing package is
refused. ``importlib.util.find_spec``, which the core uses to tell whether an extra is
installed without importing it, raises the same error there.
"""

from __future__ import annotations

import os
from pathlib import Path

SITECUSTOMIZE = '''\
import sys

REFUSED = {names!r}


class Refuse:
    """Refuses REFUSED and their submodules, as if they were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Refuse())
'''


def without(directory: Path, *names: str) -> dict[str, str]:
    """The environment variables that make a Python subprocess refuse ``names``: a
    ``PYTHONPATH`` that starts with ``directory``, where the hook is written."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE.format(names=tuple(names)))
    path = os.pathsep.join(p for p in (str(directory), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}
