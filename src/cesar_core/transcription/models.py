"""Model names to local directories, through every registered model source.

The resolver is the only place that knows the order of sources and how to explain a miss:
an unknown name gets a message naming what *is* available and how to add a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pluggy

from ..errors import ModelNotFoundError
from ..protocols import ModelLocation, ModelSource
from ..settings import Settings
from .sources import is_model_dir, looks_like_path


class ModelResolver:
    """Resolves model names with the sources of every plugin, in ascending priority."""

    def __init__(self, sources: Sequence[ModelSource]) -> None:
        self.sources = sorted(sources, key=lambda source: source.priority)

    @classmethod
    def from_plugins(cls, manager: pluggy.PluginManager, settings: Settings) -> ModelResolver:
        """Collect the sources every plugin provides for ``settings``."""
        sources = [
            source
            for provided in manager.hook.cesar_model_sources(settings=settings)
            for source in provided
        ]
        return cls(sources)

    @classmethod
    def builtin(cls, settings: Settings) -> ModelResolver:
        """Only Cesar's own sources, for a transcriber built without a plugin manager."""
        from .sources import cesar_model_sources

        return cls(cesar_model_sources(settings))

    def resolve(self, name: str) -> ModelLocation:
        """The location of ``name``; raises :class:`ModelNotFoundError` with the choices."""
        for source in self.sources:
            location = source.resolve(name)
            if location is not None:
                return location
        raise self._not_found(name)

    def available(self) -> list[ModelLocation]:
        """Every model any source lists, the first (highest-priority) source of a name first."""
        return [location for source in self.sources for location in source.available()]

    def _not_found(self, name: str) -> ModelNotFoundError:
        if looks_like_path(name):
            path = Path(name).expanduser()
            if not path.exists():
                problem = f"The model directory {path} does not exist."
            elif not is_model_dir(path):
                problem = (
                    f"{path} is not a CTranslate2 whisper model directory "
                    "(it needs model.bin and config.json)."
                )
            else:  # pragma: no cover - is_model_dir() passed yet no source took it
                problem = f"No model source accepted the directory {path}."
            return ModelNotFoundError(problem, hint=_how_to_add())
        ready = sorted({loc.name for loc in self.available() if loc.path is not None})
        missing = sorted(
            f"{loc.name} ({loc.note})" for loc in self.available() if loc.path is None and loc.note
        )
        choices = ", ".join(ready) if ready else "none"
        message = f"Model {name!r} is not available offline. Available here: {choices}."
        if missing:
            message += f" Installable: {'; '.join(missing)}."
        return ModelNotFoundError(message, hint=_how_to_add())


def _how_to_add() -> str:
    return (
        "List the models with `cesar models` (or GET /v1/models); give model as a directory "
        "holding a CTranslate2 whisper model; or allow a one-time download with "
        "allow_download (CESAR_ALLOW_DOWNLOAD=1)."
    )
