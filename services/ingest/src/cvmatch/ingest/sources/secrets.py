"""A wrapper that keeps secret strings out of ``repr``, logs, tracebacks and serialised configs."""

from __future__ import annotations

from typing import Final

_MASK: Final = "**********"


class Secret:
    """A secret string: ``str()``/``repr()`` print a mask; :meth:`reveal` gives the value to the one
    call that needs it (a driver's connect, an ``Authorization`` header)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
