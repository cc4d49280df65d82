"""Shared fixtures: real audio fixtures, a real model, an isolated cache, offline always."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Never let anything reach a model hub, whatever the test does.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("CESAR_ALLOW_DOWNLOAD", None)

import pytest

from cesar_core import Settings, WhisperTranscriber
from cesar_core.evaluation import normalise as normalise  # shared with the benchmarks
from cesar_core.evaluation import wer as wer

from .postgres_helpers import _throwaway_postgres, empty_postgres, postgres_url

# Fixtures, shared by every test module; the first stops a throwaway PostgreSQL at the end.
__all__ = ["_throwaway_postgres", "empty_postgres", "postgres_url"]

DATA = Path(__file__).parent / "data"
REFERENCES: dict[str, str] = json.loads((DATA / "references.json").read_text())


@pytest.fixture(scope="session", autouse=True)
def _isolated_cesar_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test run starts with an empty cache and data directory of its own."""
    root = tmp_path_factory.mktemp("cesar-home")
    os.environ["CESAR_CACHE_DIR"] = str(root / "cache")
    os.environ["CESAR_DATA_DIR"] = str(root / "data")
    os.environ["CESAR_CONFIG"] = str(root / "cesar.toml")
    (root / "cesar.toml").write_text("")


@pytest.fixture(scope="session")
def settings(_isolated_cesar_dirs: None) -> Settings:
    return Settings.load()


@pytest.fixture(scope="session")
def transcriber(settings: Settings) -> WhisperTranscriber:
    """One transcriber for the session, so the models stay warm between tests."""
    return WhisperTranscriber(settings)


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def packing_ignores_confidence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared windows keep every clip whatever the model's confidence in its words.

    For tests of how sharing works (a cancelled or bad job, another store, live segments),
    not of which clips the model was sure of: tiny.en hears some of the espeak-ng clips with
    a mean word probability under :data:`~cesar_core.pack_layout.MIN_WORD_PROBABILITY` on
    some CPUs, and those would run alone.
    """
    from cesar_core import pack_layout

    monkeypatch.setattr(pack_layout, "MIN_WORD_PROBABILITY", 0.0)
