"""The one rule of the layout: the core knows nothing of HTTP, the terminal or PostgreSQL;
and the layers beneath it: arrows point down, no module imports itself back through others,
and the domain model loads no engine."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import cesar_core

ROOT = Path(__file__).parent.parent
SRC = ROOT / "src"
PACKAGES = ("cesar_core", "cesar_cli", "cesar_http", "cesar_postgres")
ADAPTERS = ("cesar_cli", "cesar_http", "cesar_postgres")
#: What an API-only node or ``cesar jobs list`` should never pay for.
ENGINES = ("faster_whisper", "ctranslate2", "av", "numpy", "pluggy", "httpx")


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 5 kept, 0 broken." in result.stdout


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


def _imported(graph: grimp.ImportGraph, module: str) -> set[str]:
    """What ``module`` imports, with the packages that run on the way: importing
    ``a.b.c`` runs ``a/b/__init__`` too. (The top-level packages are left out: their
    ``__init__`` is a public face whose names load lazily, on first use.)"""
    found = set()
    for imported in graph.find_modules_directly_imported_by(module):
        if imported.startswith(PACKAGES):
            found.add(imported)
            parts = imported.split(".")
            for depth in range(2, len(parts)):
                package = ".".join(parts[:depth])
                if not module.startswith(f"{package}."):
                    found.add(package)
    return found


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), over every
    import statement, including those inside functions: a deferred import cannot hide one,
    nor can an import of a package's submodule hide that it runs the package."""
    edges = {
        module: _imported(graph, module) for module in graph.modules if module.startswith(PACKAGES)
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph(*PACKAGES)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a graph with a known cycle is reported."""
    graph = grimp.ImportGraph()
    for module in ("cesar_core.a", "cesar_core.b", "cesar_core.c"):
        graph.add_module(module)
    graph.add_import(importer="cesar_core.a", imported="cesar_core.b")
    graph.add_import(importer="cesar_core.b", imported="cesar_core.a")
    graph.add_import(importer="cesar_core.c", imported="cesar_core.a")
    assert _cycles(graph) == [["cesar_core.a", "cesar_core.b"]]


def test_the_cycle_finder_sees_packages_run_on_the_way() -> None:
    """A package's ``__init__`` that imports (even in a function) a module which imports
    one of the package's submodules is a cycle: that import runs the ``__init__``."""
    graph = grimp.ImportGraph()
    for module in ("cesar_core.p", "cesar_core.p.cache", "cesar_core.q"):
        graph.add_module(module)
    graph.add_import(importer="cesar_core.p", imported="cesar_core.q")
    graph.add_import(importer="cesar_core.q", imported="cesar_core.p.cache")
    assert _cycles(graph) == [["cesar_core.p", "cesar_core.q"]]


def test_the_domain_model_loads_no_engine() -> None:
    """What a node that only queues jobs imports: jobs, transcripts, errors, protocols,
    settings and the public face of the package, without faster-whisper, CTranslate2,
    PyAV, NumPy, pluggy or httpx."""
    code = (
        "import sys, cesar_core, cesar_core.jobs, cesar_core.transcript, cesar_core.errors, "
        "cesar_core.protocols, cesar_core.convert, cesar_core.settings; "
        "cesar_core.TranscribeOptions(language='fr'); "
        f"print(','.join(m for m in {ENGINES!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_the_public_face_still_offers_the_engine() -> None:
    """The names loaded on first use resolve to the same objects as their modules'."""
    from cesar_core.transcription.whisper import WhisperTranscriber

    assert cesar_core.WhisperTranscriber is WhisperTranscriber
    for name in cesar_core.__all__:
        assert getattr(cesar_core, name) is not None
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = cesar_core.no_such_name  # type: ignore[attr-defined]


def test_the_language_list_is_the_engines() -> None:
    """The domain's copy of whisper's languages matches the installed faster-whisper."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    from cesar_core.languages import LANGUAGE_CODES

    assert set(_LANGUAGE_CODES) == LANGUAGE_CODES


def test_the_core_names_no_adapter_module() -> None:
    """The core loads no adapter by name either (``importlib.import_module("cesar_...")``,
    a plugin list of strings): no string in it names a module of an adapter package."""
    naming = re.compile(rf"^({'|'.join(ADAPTERS)})(\.[A-Za-z_][A-Za-z0-9_]*)*$")
    offenders = []
    for path in sorted((SRC / "cesar_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and naming.match(node.value)
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}")
    assert offenders == []


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring constants of ``tree`` (text for readers of the code)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_the_core_speaks_of_options_not_of_command_line_flags() -> None:
    """The core's messages reach users of the library, the API and the CLI alike, so they
    name options (``model="base"``), not one adapter's flags (``--model base``)."""
    flags = set()
    for path in (SRC / "cesar_cli").rglob("*.py"):
        flags |= set(re.findall(r"[\"'](--[a-z][a-z-]+)", path.read_text(encoding="utf-8")))
    assert {"--model", "--store", "--clip-end"} <= flags
    naming = re.compile(rf"(?<![\w-])({'|'.join(map(re.escape, sorted(flags)))})(?![\w-])")
    offenders = []
    for path in sorted((SRC / "cesar_core").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and naming.search(node.value)
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_the_bundled_postgres_plugin_comes_through_its_entry_point() -> None:
    """The PostgreSQL plugin is registered like any plugin, and even with CESAR_PLUGINS
    empty, since it ships with Cesar; CESAR_BLOCK_PLUGINS can still keep it out."""
    from cesar_core.plugins import BUILTIN_PLUGINS, make_manager

    manager = make_manager({"CESAR_PLUGINS": ""})
    assert manager.get_plugin("postgres").__name__ == "cesar_postgres.plugin"
    assert all(name.startswith("cesar_core.") for name in BUILTIN_PLUGINS)
    blocked = make_manager({"CESAR_BLOCK_PLUGINS": "postgres"})
    assert blocked.get_plugin("postgres") is None
    names = {name for provided in blocked.hook.cesar_job_stores() for name in provided}
    assert "postgresql" not in names


def test_no_source_module_is_longer_than_400_lines() -> None:
    """Modules small enough to read in one sitting."""
    long = [
        f"{path.relative_to(ROOT)}: {lines}"
        for path in sorted(SRC.rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 400
    ]
    assert long == []


def test_an_api_only_server_loads_no_engine() -> None:
    """``cesar serve --no-worker`` imports the app, not the worker: no faster-whisper,
    CTranslate2, PyAV, NumPy or torch on a node that only takes requests."""
    code = (
        "import sys, cesar_http.app; "
        "print(','.join(m for m in ('faster_whisper', 'ctranslate2', 'av', 'numpy', 'torch') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
