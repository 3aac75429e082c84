"""A set of sequence numbers kept as sorted, disjoint runs: the frames an edge spool holds.

An edge agent's spool is mostly one long run of consecutive sequence numbers
(an outage's backlog) with a few holes (frames acknowledged individually ahead
of the backlog, frames dropped by the size policy), so runs stay few however
many frames wait. New numbers are only ever added above the highest one.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator

Run = tuple[int, int]  # inclusive: (first, last)


class SeqRanges:
    def __init__(self, runs: Iterable[Run] = ()) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []
        self._count = 0
        for lo, hi in runs:
            self.append(lo, hi)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        i = bisect_right(self._lo, seq) - 1
        return i >= 0 and seq <= self._hi[i]

    def __iter__(self) -> Iterator[int]:
        for lo, hi in zip(self._lo, self._hi):
            yield from range(lo, hi + 1)

    def runs(self) -> list[Run]:
        return list(zip(self._lo, self._hi))

    def first(self) -> int | None:
        return self._lo[0] if self._lo else None

    def last(self) -> int | None:
        return self._hi[-1] if self._hi else None

    def append(self, lo: int, hi: int) -> None:
        """Add ``lo..hi``, all above every number held (``ValueError`` otherwise)."""
        if lo > hi:
            raise ValueError(f"empty run {lo}..{hi}")
        if self._hi and lo <= self._hi[-1]:
            raise ValueError(f"run {lo}..{hi} is not above the highest number held, {self._hi[-1]}")
        if self._hi and lo == self._hi[-1] + 1:
            self._hi[-1] = hi
        else:
            self._lo.append(lo)
            self._hi.append(hi)
        self._count += hi - lo + 1

    def next_after(self, seq: int) -> int | None:
        """The smallest number held above ``seq``."""
        i = bisect_right(self._lo, seq) - 1
        if i >= 0 and seq < self._hi[i]:
            return seq + 1
        return self._lo[i + 1] if i + 1 < len(self._lo) else None

    def discard(self, seq: int) -> bool:
        """Remove ``seq``; returns whether it was held."""
        i = bisect_right(self._lo, seq) - 1
        if i < 0 or seq > self._hi[i]:
            return False
        lo, hi = self._lo[i], self._hi[i]
        if lo == hi:
            del self._lo[i], self._hi[i]
        elif seq == lo:
            self._lo[i] = lo + 1
        elif seq == hi:
            self._hi[i] = hi - 1
        else:
            self._hi[i] = seq - 1
            self._lo.insert(i + 1, seq + 1)
            self._hi.insert(i + 1, hi)
        self._count -= 1
        return True

    def remove_upto(self, seq: int) -> list[Run]:
        """Remove every number up to ``seq``; returns the runs removed."""
        n = bisect_right(self._lo, seq)  # runs starting at or below seq
        if n == 0:
            return []
        removed = list(zip(self._lo[:n], self._hi[:n]))
        if removed[-1][1] > seq:  # the last one is cut
            lo, hi = removed[-1]
            removed[-1] = (lo, seq)
            self._lo[n - 1] = seq + 1
            n -= 1
        del self._lo[:n], self._hi[:n]
        self._count -= sum(hi - lo + 1 for lo, hi in removed)
        return removed
