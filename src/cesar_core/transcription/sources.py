"""The built-in model sources, registered through the same hook as any plugin.

In order: a directory the user names, a model carried by an installed package, Cesar's own
cache, and (only when downloads are allowed) the Hugging Face hub.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from attrs import define

from ..hookspecs import hookimpl
from ..protocols import ModelLocation, ModelSource
from ..settings import Settings
from .carriers import CARRIED_MODELS, assemble, locate, verify_installed

#: The files faster-whisper needs in a CTranslate2 whisper directory.
REQUIRED_FILES = ("model.bin", "config.json")


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` looks like a CTranslate2 whisper model directory."""
    return path.is_dir() and all((path / name).is_file() for name in REQUIRED_FILES)


def looks_like_path(name: str) -> bool:
    """Names with a separator, or starting with ``.`` or ``~``, are paths, not model names."""
    return "/" in name or "\\" in name or name.startswith((".", "~"))


def is_filesystem_only(name: str) -> bool:
    """Paths that can never be a hub repository id (``org/name`` can be either)."""
    return "\\" in name or name.startswith((".", "~", "/"))


@define
class DirectorySource:
    """A model named by its directory: ``--model ./my-model`` or an absolute path."""

    name: str = "path"
    priority: int = 10

    def resolve(self, model: str) -> ModelLocation | None:
        if not looks_like_path(model):
            return None
        path = Path(model).expanduser().resolve()
        if not is_model_dir(path):
            return None
        return ModelLocation(name=model, source=self.name, path=path)

    def available(self) -> Iterable[ModelLocation]:
        return ()


@define
class PackageSource:
    """Models carried by installed Python packages, verified against pinned checksums."""

    settings: Settings
    name: str = "package"
    priority: int = 20

    def resolve(self, model: str) -> ModelLocation | None:
        for carried in CARRIED_MODELS:
            if carried.name != model:
                continue
            found = locate(carried)
            if found is None:
                return None
            parts, files = found
            origin = f"{self.name}:{'+'.join(carried.distributions)}"
            if carried.split:
                path = assemble(carried, parts, files, self.settings.models_dir / carried.name)
                return ModelLocation(
                    name=model, source=origin, path=path, multilingual=carried.multilingual
                )
            verify_installed(carried, parts, files)
            return ModelLocation(
                name=model, source=origin, path=parts[0].parent, multilingual=carried.multilingual
            )
        return None

    def available(self) -> Iterator[ModelLocation]:
        for carried in CARRIED_MODELS:
            origin = f"{self.name}:{'+'.join(carried.distributions)}"
            found = locate(carried)
            if found is None:
                install = (
                    f"pip install 'cesar[{carried.extra}]'"
                    if carried.extra
                    else "pip install " + " ".join(carried.distributions)
                )
                yield ModelLocation(
                    name=carried.name,
                    source=origin,
                    path=None,
                    multilingual=carried.multilingual,
                    note=f"not installed: {install}",
                )
                continue
            parts, _ = found
            note = "joined into the cache on first use" if carried.split else ""
            yield ModelLocation(
                name=carried.name,
                source=origin,
                path=parts[0].parent,
                multilingual=carried.multilingual,
                note=note,
            )


@define
class CacheSource:
    """Models in Cesar's cache directory, and any already in the local Hugging Face cache."""

    settings: Settings
    name: str = "cache"
    priority: int = 30

    def resolve(self, model: str) -> ModelLocation | None:
        if is_filesystem_only(model):
            return None
        path = self.settings.models_dir / model
        if is_model_dir(path):
            return ModelLocation(name=model, source=self.name, path=path)
        return _hub_lookup(model, self.settings, local_only=True, source=self.name)

    def available(self) -> Iterator[ModelLocation]:
        root = self.settings.models_dir
        if root.is_dir():
            for path in sorted(root.iterdir()):
                if is_model_dir(path) and not path.name.startswith("."):
                    yield ModelLocation(name=path.name, source=self.name, path=path)


@define
class HubSource:
    """Downloads from the Hugging Face hub, only when the user allows network access."""

    settings: Settings
    name: str = "hub"
    priority: int = 90

    def resolve(self, model: str) -> ModelLocation | None:
        if not self.settings.allow_download or is_filesystem_only(model):
            return None
        return _hub_lookup(model, self.settings, local_only=False, source=self.name)

    def available(self) -> Iterable[ModelLocation]:
        if not self.settings.allow_download:
            return ()
        from faster_whisper.utils import available_models

        return [
            ModelLocation(name=name, source=self.name, path=None, note="downloaded on first use")
            for name in available_models()
        ]


def _hub_lookup(
    model: str, settings: Settings, *, local_only: bool, source: str
) -> ModelLocation | None:
    from faster_whisper.utils import available_models, download_model

    if model not in available_models() and "/" not in model:
        return None
    try:
        path = download_model(
            model, local_files_only=local_only, cache_dir=str(settings.cache_dir / "hub")
        )
    except Exception:  # the hub client raises many kinds; any means "not here"
        return None
    return ModelLocation(name=model, source=source, path=Path(path))


@hookimpl
def cesar_model_sources(settings: Settings) -> list[ModelSource]:
    return [
        DirectorySource(),
        PackageSource(settings),
        CacheSource(settings),
        HubSource(settings),
    ]
