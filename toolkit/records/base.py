"""What every record shares: to_json() writes the file's JSON key for key and in its order, from_json() is its
inverse (from_json(x.to_json()) == x)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

from toolkit.errors import ToolkitError
from toolkit.files import Json

Record = TypeVar("Record")


def field_json(value: Any) -> Any:
    """A field's JSON: records by their to_json(), lists and dicts item by item, anything else as it is."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, list):
        return [field_json(item) for item in value]
    if isinstance(value, dict):
        return {key: field_json(item) for key, item in value.items()}
    return value


def to_fields(record: Any) -> Json:
    """A record's fields in order; a field that defaults to None is written only when set (the stages leave
    such keys out)."""
    return {f.name: field_json(getattr(record, f.name)) for f in fields(record)
            if not (f.default is None and getattr(record, f.name) is None)}


def from_fields(cls: type[Record], document: Json, **records: Any) -> Record:
    """A record from the keys of `document` that name its fields, with `records` (its fields that are records,
    already read) in place of theirs: a field without a default must be there; other keys are not the record's."""
    values = {**document, **records}
    return cls(**{f.name: values[f.name] for f in fields(cls)  # type: ignore[arg-type]
                  if f.name in values or (f.default is MISSING and f.default_factory is MISSING)})


def parsed(read: Callable[[Json], Record], document: Json, path: object, what: str) -> Record:
    """read(document) (a record's from_json), or one line naming the file and what should have written it: a field
    missing or of another shape is an older toolkit's file or one edited by hand, not a traceback."""
    try:
        return read(document)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        wrong = f"no {error.args[0]!r} field" if isinstance(error, KeyError) else f"{type(error).__name__}: {error}"
        raise ToolkitError(f"{path} does not hold what {what} writes ({wrong}); make it again") from None
