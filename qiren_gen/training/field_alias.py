"""A second name for a dataclass field, so the two training configs answer to the same spellings."""
from __future__ import annotations

from typing import Any


class FieldAlias:
    """Reads and sets the field ``field`` under the attribute's own name.

    The stage-1 config's ``train_batch_size`` (the flags' name) is the prior config's ``batch_size``; each config
    declares the other spelling as ``FieldAlias`` so code written against either config works with both. A class
    attribute without an annotation, it is not a dataclass field: ``asdict`` and the constructor keep one name.
    """

    def __init__(self, field: str) -> None:
        self.field = field

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        return self if obj is None else getattr(obj, self.field)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self.field, value)


__all__ = ["FieldAlias"]
