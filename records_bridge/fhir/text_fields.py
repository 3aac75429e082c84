"""Free text from the hub as FHIR strings.

FHIR strings are never empty and hold no control characters. ``clean_event``
collapses every run of whitespace in an event's texts to one space (a
non-breaking space pasted into a name, a line break in a diagnosis) and rejects
control characters, before anything is mapped; after it, a blank text is absent
where the element is optional (``optional``) and a ``MappingError`` where it is
not (``required``).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from records_bridge.fhir.contract import MappingError
from wire.outbox_events import Event


def clean(value: str, what: str) -> str:
    """``value`` with its whitespace collapsed; ``MappingError`` naming ``what`` for control or surrogate characters."""
    text = " ".join(value.split())
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise MappingError(f"{what} holds control characters")
    return text


def clean_event(event: Event) -> Event:
    """``event`` with every text cleaned; the keys of the sub-score map are texts too."""
    return Event.model_validate(_clean(event.model_dump(), event.data.type))


def _clean(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return clean(value, where)
    if isinstance(value, dict):
        cleaned = {_clean(k, where): _clean(v, f"{where}.{k}") for k, v in value.items()}
        if len(cleaned) != len(value):
            raise MappingError(f"{where}: two keys differ only in whitespace")
        return cleaned
    if isinstance(value, list):
        return [_clean(v, where) for v in value]
    return value


def optional(value: str | None) -> str | None:
    """The (cleaned) text, or None when it is blank."""
    return value or None


def required(value: str | None, what: str) -> str:
    """The (cleaned) text; ``MappingError`` naming ``what`` when it is blank."""
    if not value:
        raise MappingError(f"{what} is blank")
    return value
