"""What delivering one event can come to, besides success: try again later, or never (park it)."""

from __future__ import annotations


class Retry(Exception):
    """The target could not take the event now (down, overloaded, a network fault): the same event is tried again,
    after a backoff, and nothing behind it goes first."""


class Poison(Exception):
    """The event can never be delivered as it is (the target refuses it as invalid, or it cannot be mapped): it is
    parked with the reason, counted, and the sink moves on."""
