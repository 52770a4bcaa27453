"""A tiny name -> factory registry with a ``@register`` decorator (the timm pattern).

Used for models (``pai.models``), pruners (``pai.pruners``) and datasets.  Unknown names raise a
``KeyError`` that lists every valid name, so a typo in a config is a one-line fix.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterator, TypeVar

F = TypeVar("F", bound=Callable)


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, Callable] = {}

    def register(self, name: str | None = None, *aliases: str) -> Callable[[F], F]:
        """Decorator: ``@REG.register("resnet18")`` (default name: the function's name)."""

        def deco(fn: F) -> F:
            for key in (name or fn.__name__, *aliases):
                if key in self._entries and self._entries[key] is not fn:
                    raise ValueError(f"{self.kind} {key!r} registered twice")
                self._entries[key] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
