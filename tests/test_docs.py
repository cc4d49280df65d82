"""The documentation is part of the product: it must cover every hook and option, and run."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import attrs
import click

from cesar_cli.transcribe import transcribe
from cesar_core import hookspecs
from cesar_core.settings import Settings

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


def hook_names() -> list[str]:
    return [
        name
        for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("cesar_")
    ]


def section(page: str, heading: str) -> str:
    """The text under ``heading`` (a whole line), up to the next heading of any level."""
    start = page.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(r"^#{1,6} ", page[start:], flags=re.MULTILINE)
    return page[start : start + following.start()] if following else page[start:]


def documented_parameters(text: str, name: str) -> list[str] | None:
    """The parameter names of the first ``def name(...)`` in the ``python`` blocks of
    ``text``; None when there is none."""
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.FunctionDef) and node.name == name:
                arguments = node.args
                every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
                return [argument.arg for argument in every]
    return None


def test_every_hook_is_documented() -> None:
    hooks = hook_names()
    assert hooks
    page = (DOCS / "plugins.md").read_text()
    missing = [name for name in hooks if f"### `{name}`" not in page]
    assert not missing, f"hooks without a section in docs/plugins.md: {missing}"
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, f"{name} has no docstring"


def test_every_hook_signature_is_documented_as_declared() -> None:
    """The ``def`` under each hook's heading names the parameters pluggy passes: a plugin
    written from the docs with a misspelt or missing one would never be called right."""
    page = (DOCS / "plugins.md").read_text()
    wrong = {}
    for name in hook_names():
        declared = list(inspect.signature(getattr(hookspecs, name)).parameters)
        documented = documented_parameters(section(page, f"### `{name}`"), name)
        if documented != declared:
            wrong[name] = f"docs: {documented}, hookspecs.py: {declared}"
    assert not wrong, f"hook signatures in docs/plugins.md differ from hookspecs.py: {wrong}"


def test_every_setting_is_documented() -> None:
    """Every field of ``Settings``, read from the class itself so that a new one is caught,
    has a row in docs/settings.md's table with its environment variable."""
    page = (DOCS / "settings.md").read_text()
    names = [field.name for field in attrs.fields(Settings)]
    assert len(names) > 10
    missing = [name for name in names if f"| `{name}` | `CESAR_{name.upper()}` |" not in page]
    assert not missing, f"settings without a row in docs/settings.md: {missing}"


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
