"""The library's one cattrs converter: domain objects to JSON-ready dicts and back.

A private converter (rather than cattrs' global one) keeps our hooks from leaking into, or
being changed by, other libraries in the same process. Times are floats in seconds, enums
are their values, tuples are lists, and datetimes are ISO-8601 strings in UTC.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from .jobs import Job
from .transcript import Segment, Transcript, Word

T = TypeVar("T")

_converter = cattrs.Converter(forbid_extra_keys=False)


def _datetime_to_str(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; Cesar stores only aware UTC times")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _datetime_from_str(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_converter.register_unstructure_hook(datetime, _datetime_to_str)
_converter.register_structure_hook(datetime, _datetime_from_str)
_converter.register_unstructure_hook_func(
    lambda cls: isinstance(cls, type) and issubclass(cls, enum.Enum), lambda member: member.value
)
# Speakers appear only in transcripts that asked for them: the others keep their shape.
_omitted = override(omit_if_default=True)
_converter.register_unstructure_hook(
    Word, make_dict_unstructure_fn(Word, _converter, speaker=_omitted)
)
_converter.register_unstructure_hook(
    Segment, make_dict_unstructure_fn(Segment, _converter, speaker=_omitted, language=_omitted)
)
_converter.register_unstructure_hook(
    Transcript, make_dict_unstructure_fn(Transcript, _converter, speakers=_omitted)
)
# A claimed job's inline audio is for the worker alone: it never goes out as JSON.
_converter.register_unstructure_hook(
    Job, make_dict_unstructure_fn(Job, _converter, audio=override(omit=True))
)


def to_dict(obj: Any) -> Any:
    """Turn an attrs object (or a container of them) into JSON-ready builtins."""
    return _converter.unstructure(obj)


def from_dict(data: Any, cls: type[T]) -> T:
    """Build ``cls`` from the builtins :func:`to_dict` produced; validators run as usual."""
    return _converter.structure(data, cls)
