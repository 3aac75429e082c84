"""Telling a sample stored for the first time from a device re-sending it.

HL7 and S/5 monitors repeat their last NIBP reading, with its original device
time, every second until the next cuff cycle. The store keys samples by (bed,
parameter, device time), so storing a repeat changes nothing, but counting it
as a write misleads anyone comparing the hub's counters with the store.

``LastStored`` remembers, per (bed, parameter), the latest sample known to be
durably stored. A sample equal to it (same device time, value and flags) is a
re-send: the hub need not store it again, and counts it apart. Only durable
samples count, so a repeat of a sample still in flight (or whose write failed,
leaving its frame unacknowledged) is stored like any other: it can never be
skipped in favour of a copy that is not on disk.

A paced agent sends its newest frame first and its backlog later, so a re-send
of an older reading can arrive after a newer one was stored. For a series seen
re-sending, the readings a newer one displaced are remembered too (the last
``EARLIER`` of them), so those late re-sends are told apart as well.
"""

from __future__ import annotations

from collections.abc import Iterable

from wire.messages import Observation

MAX_SERIES = 500_000  # (bed, parameter) pairs remembered; beyond, the memory starts again (only costs re-writes)
EARLIER = 3  # displaced readings remembered per re-sending series (NIBP: the cuff cycles of a backlog's span)

Mark = tuple[int, float | None, int]  # (device time, value, flags)


class LastStored:
    def __init__(self) -> None:
        self._last: dict[tuple[str, str], Mark] = {}
        self._earlier: dict[tuple[str, str], tuple[Mark, ...]] = {}  # series seen re-sending -> readings displaced

    def is_resend(self, o: Observation) -> bool:
        """True when ``o`` is exactly a sample of its series already durably stored (the latest, or a displaced one)."""
        key, mark = (o.bed, o.param), (o.t_dev, o.value, o.flags)
        return self._last.get(key) == mark or mark in self._earlier.get(key, ())

    def stored(self, obs: Iterable[Observation]) -> tuple[int, int]:
        """These samples are durable now: returns (first stored, re-sends of one stored before)."""
        new = resent = 0
        last, earlier = self._last, self._earlier
        for o in obs:
            key, mark = (o.bed, o.param), (o.t_dev, o.value, o.flags)
            prev = last.get(key)
            if prev == mark or mark in earlier.get(key, ()):
                resent += 1
                earlier.setdefault(key, ())  # a re-sending series: what a newer reading displaces is kept
                continue
            new += 1
            if prev is None or o.t_dev >= prev[0]:  # keep the newest: a backlog's older samples do not displace it
                if prev is None and len(last) >= MAX_SERIES:
                    last.clear()
                    earlier.clear()
                elif prev is not None and key in earlier:
                    earlier[key] = (prev, *earlier[key])[:EARLIER]
                last[key] = mark
        return new, resent
