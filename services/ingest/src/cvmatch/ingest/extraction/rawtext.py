"""The value a parser returns inside the sandbox, before normalisation and the minimum-text check."""

from __future__ import annotations

from dataclasses import dataclass

from .outcomes import Outcome


@dataclass(frozen=True, slots=True)
class RawText:
    """A parser's result: ``text`` is meaningful only when ``outcome`` is ``ok``."""

    outcome: Outcome
    text: str = ""
    pages: int = 0
    message: str = ""


class TextLimitExceeded(Exception):
    """Raised by a parser as soon as its output passes ``max_text_chars`` (stops runaway extraction)."""
