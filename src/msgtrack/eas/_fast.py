"""Build frozen dataclass instances on hot paths without per-field ``object.__setattr__``.

A frozen dataclass's ``__init__`` calls ``object.__setattr__`` once per field; for the
IIS reader that costs more than splitting and decoding the line. :func:`builder` returns
a function that fills ``__dict__`` in one step instead. It refuses classes where that
would skip work (``__post_init__``, ``__slots__``, fields without a plain default), and
the tests compare its instances with ones built through ``__init__``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def builder(cls: type[T]) -> Callable[..., T]:
    """``build(**values)`` for ``cls``: defaults for missing fields, no validation."""
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__} needs its __init__")
    defaults: dict[str, Any] = {}
    required: set[str] = set()
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        else:
            required.add(f.name)  # no default, or a default_factory: the caller passes it
    new, set_ = object.__new__, object.__setattr__

    def build(**values: Any) -> T:
        missing = required - values.keys()
        if missing:
            raise TypeError(f"{cls.__name__} needs {', '.join(sorted(missing))}")
        obj = new(cls)
        set_(obj, "__dict__", {**defaults, **values})
        return obj

    return build
