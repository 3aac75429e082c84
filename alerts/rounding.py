"""Half-up rounding of chart values before they are banded.

Every early-warning score rounds its inputs to the chart's precision first
(``shared/clinical/scores.md``: RR, HR, SpO2 and SBP to whole numbers,
temperature to one decimal). The rule is decimal-style half up, so 35.05 °C is
35.1 °C and 0.5 is 1. Python's ``round()`` and ``np.round`` round half to even
and must not be used for this.

A tie is judged on the value as a person wrote it, not on its binary
approximation: ``35.05`` is stored as 35.04999999999999715..., which is still a
tie. To see through that noise the value is scaled by ``10**decimals`` and
first snapped to 6 decimal places of the scaled unit; anything within 5e-7 of
a tie counts as the tie.

Negative numbers round half away from zero (-0.5 -> -1, -2.25 -> -2.3 at one
decimal), as Python's ``decimal.ROUND_HALF_UP`` does: the rule is symmetric, so
rounding commutes with negation. NaN stays NaN and infinities stay infinite.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: beyond this magnitude every float64 is already a whole number
_EXACT_INTEGERS = 2.0**52

#: decimal places, in the scaled unit, within which a value counts as a tie
_NOISE_DECIMALS = 6

#: below this magnitude (in scaled units) a whole number survives the snap to ``_NOISE_DECIMALS`` exactly
SNAP_EXACT = _EXACT_INTEGERS / 10**_NOISE_DECIMALS


def round_half_up_scaled(x: npt.ArrayLike, decimals: int) -> npt.NDArray[np.float64]:
    """Return ``x`` in units of ``10**-decimals``, rounded half up to whole units.

    The result holds whole numbers as float64 (NaN where ``x`` is NaN), so that
    callers can compare rounded values exactly, e.g. temperatures in tenths.
    """
    if isinstance(decimals, bool) or not isinstance(decimals, int):
        raise TypeError(f"decimals must be an int, not {type(decimals).__name__}")
    values = np.asarray(x, dtype=np.float64)
    scalar = values.ndim == 0
    if scalar:
        values = values.reshape(1)
    if decimals >= 0:
        scaled = values * float(10**decimals)
    else:
        scaled = values / float(10**-decimals)
    rounded = round_units_in_place(scaled.copy())
    with np.errstate(invalid="ignore"):
        # Huge magnitudes are already whole (and snapping could overflow them).
        np.copyto(rounded, scaled, where=np.abs(scaled) >= _EXACT_INTEGERS)
    rounded += 0.0  # turns -0.0 into 0.0
    return rounded[0] if scalar else rounded


def round_units_in_place(scaled: npt.NDArray[np.float64], *, signed: bool = True) -> npt.NDArray[np.float64]:
    """Round values already in units of ``10**-decimals`` half up to whole units, in ``scaled`` itself, and return it.

    The same operations as ``round_half_up_scaled`` for magnitudes below ``2**52`` (NaN stays NaN), so
    the same whole units; the result may hold -0.0. A whole number below ``SNAP_EXACT`` stays itself. With ``signed=False`` every value must be at least 0 (or NaN): half up is then
    ``floor(snapped + 0.5)``, two passes fewer. ``alerts.lookup`` rounds inputs clipped to its grids so."""
    with np.errstate(over="ignore", invalid="ignore"):
        np.round(scaled, _NOISE_DECIMALS, out=scaled)  # the snap: within 5e-7 of a tie counts as the tie
        if not signed:
            scaled += 0.5
            return np.floor(scaled, out=scaled)
        whole = np.abs(scaled)
        whole += 0.5
        np.floor(whole, out=whole)
        return np.copysign(whole, scaled, out=scaled)


def round_half_up(x: npt.ArrayLike, decimals: int) -> npt.NDArray[np.float64]:
    """Round ``x`` to ``decimals`` places, ties away from zero; NaN is preserved.

    >>> round_half_up(np.array([35.05, 0.5, 90.5, 36.04999, np.nan]), 1).tolist()
    [35.1, 0.5, 90.5, 36.0, nan]
    """
    units = round_half_up_scaled(x, decimals)
    if decimals >= 0:
        return units / float(10**decimals)
    return units * float(10**-decimals)
