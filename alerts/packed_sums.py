"""Sub-scores summed as bit fields of one integer, so that every score's sums take one add per input.

Each score owns a ``Fields`` slice of the bits of an ``np.intp``. From its
lowest bit the slice holds the partial sum of the score's known sub-scores, the
count of its missing (NaN) sub-scores and, when the score asks for it, the count
of sub-scores equal to ``top`` (NEWS2's single-parameter 3). ``Fields.encode``
turns a sub-score lookup array into what each of its entries adds to those
counters. An input read by several scores adds all their counters with one
integer, so adding the inputs' integers sums every score at once. The widths
come from the largest partial sum and the number of components, so no counter
can carry into the next.

``Fields.key`` cuts a score's bits out of such a sum; ``Fields.counters`` gives
the partial sum and counts every key stands for, so that what a key means (the
total, the band, the trigger) is tabulated once, when the tables are compiled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: the bits a packed sum may use (an ``np.intp`` is 64 bits)
MAX_BITS = 62


@dataclass(frozen=True)
class Fields:
    """A score's bits of a packed sum: partial sum, missing count, then (optionally) the count of ``top``."""

    shift: int  # the lowest bit
    partial_bits: int
    count_bits: int  # each count's width
    top: int | None  # the sub-score whose occurrences are counted, or None for no such count

    @classmethod
    def sized(cls, shift: int, highest_partial: int, components: int, top: int | None = None) -> Fields:
        """Fields from bit ``shift`` wide enough for a partial sum up to ``highest_partial`` and ``components`` counts."""
        fields = cls(shift, max(1, highest_partial.bit_length()), components.bit_length(), top)
        if fields.end > MAX_BITS:
            raise ValueError(f"packed sums need {fields.end} bits, more than {MAX_BITS}")
        return fields

    @property
    def width(self) -> int:
        return self.partial_bits + self.count_bits * (1 if self.top is None else 2)

    @property
    def end(self) -> int:
        """The first bit above these fields, where the next score's may start."""
        return self.shift + self.width

    def encode(self, lookup: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """What each entry of a sub-score lookup array (whole numbers, NaN for missing) adds to these fields."""
        missing = np.isnan(lookup)
        score = np.where(missing, 0.0, lookup).astype(np.intp)
        packed = score + (missing.astype(np.intp) << self.partial_bits)
        if self.top is not None:
            packed += ((score == self.top) & ~missing).astype(np.intp) << (self.partial_bits + self.count_bits)
        return packed << self.shift

    def key(self, packed: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """These fields of every packed sum, as a key from 0 to ``2**width - 1``."""
        mask = (1 << self.width) - 1
        if not self.shift:
            return packed & mask
        key = packed >> self.shift
        key &= mask
        return key

    def counters(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """For every key, in order: the partial sum, the count of missing sub-scores and the count of ``top``
        (0 when not counted). Keys no sum of real sub-scores reaches are listed too; they are never looked up."""
        keys = np.arange(1 << self.width, dtype=np.int64)
        partial = keys & ((1 << self.partial_bits) - 1)
        missing = (keys >> self.partial_bits) & ((1 << self.count_bits) - 1)
        tops = keys >> (self.partial_bits + self.count_bits)
        return partial, missing, tops
