"""Classes known by name, for configs and saved models: one registry per kind of class."""

from __future__ import annotations

import difflib
from typing import Generic, TypeVar

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes registered by their ``name`` class attribute.

    Parameters
    ----------
    kind : str
        What the classes are ("model", "click model"), for error messages.

    Examples
    --------
    >>> shapes = Registry("shape")
    >>> @shapes.register
    ... class Square:
    ...     name = "square"
    >>> shapes.get("square") is Square
    True
    >>> shapes.get("sqare")
    Traceback (most recent call last):
    ...
    KeyError: "unknown shape 'sqare'; did you mean 'square'? Known: square"
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, T] = {}

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` known by ``cls.name``; another class of that name is
        a ``ValueError`` (registering the same class again is not)."""
        known = self._classes.get(cls.name)
        if known is not None and known is not cls:
            raise ValueError(f"{self.kind} name {cls.name!r} registered twice")
        self._classes[cls.name] = cls
        return cls

    def get(self, name: str) -> T:
        """The class registered as ``name``; a ``KeyError`` suggests the nearest name."""
        if name not in self._classes:
            near = difflib.get_close_matches(name, self._classes, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise KeyError(f"unknown {self.kind} {name!r}{hint} Known: "
                           f"{', '.join(sorted(self._classes))}")
        return self._classes[name]
