"""The documentation is part of the product: it must cover every hook and option, and run."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import click

from cesar_cli.transcribe import transcribe
from cesar_core import hookspecs

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def test_every_hook_is_documented() -> None:
    hooks = [
        name
        for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("cesar_")
    ]
    assert hooks
    page = (DOCS / "plugins.md").read_text()
    missing = [name for name in hooks if f"### `{name}`" not in page]
    assert not missing, f"hooks without a section in docs/plugins.md: {missing}"
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, f"{name} has no docstring"


def test_every_transcribe_option_is_documented() -> None:
    page = (DOCS / "cli.md").read_text()
    options = [
        max(param.opts, key=len) for param in transcribe.params if isinstance(param, click.Option)
    ]
    missing = [option for option in options if f"`{option}" not in page]
    assert not missing, f"options missing from docs/cli.md: {missing}"


def test_library_example_runs(tmp_path: Path) -> None:
    blocks = python_blocks(DOCS / "library.md")
    assert blocks
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    result = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("en ")


def test_readme_sample_exists_and_docs_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "cesar transcribe tests/data/speech_en.wav" in readme
    assert (ROOT / "tests/data/speech_en.wav").is_file()
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
