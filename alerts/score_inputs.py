"""The one mapping from measured parameters to score inputs, with its fallbacks.

NEWS2, MEWS and qSOFA take a heart rate and a systolic pressure. The ECG heart
rate is preferred; when it is missing (no ECG, leads off) the oximeter's pulse
rate stands in. Non-invasive systolic pressure is preferred; when it is missing
the arterial line's systolic pressure stands in. Every other input is its own
parameter. The hub (bed-state matrix, ``input_rows``), the CSV audit tool and
the benchmark all take their inputs from here, so the three can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

#: score input -> parameters (``wire.vocabulary`` keys) in order of preference: the first one present is used
SOURCES: dict[str, tuple[str, ...]] = {
    "rr": ("rr",),
    "spo2": ("spo2",),
    "o2": ("o2",),
    "sbp": ("nibp_sys", "abp_sys"),
    "hr": ("hr", "pr"),
    "acvpu": ("acvpu",),
    "temp": ("temp",),
}

#: every parameter some score input reads
PARAMETERS: tuple[str, ...] = tuple(dict.fromkeys(p for params in SOURCES.values() for p in params))


def score_inputs(columns: Mapping[str, npt.NDArray[np.float64]]) -> dict[str, npt.NDArray[np.float64]]:
    """Per score input, the values per bed (or row): the first of its parameters that is not NaN, else NaN.

    ``columns`` maps parameter keys to equal-length float arrays with NaN for missing (stale, flagged,
    unreadable) values."""
    out: dict[str, npt.NDArray[np.float64]] = {}
    for name, params in SOURCES.items():
        value = np.asarray(columns[params[0]], dtype=np.float64)
        for fallback in params[1:]:
            value = np.where(np.isnan(value), columns[fallback], value)
        out[name] = value
    return out


def input_rows(matrix: npt.NDArray[np.float64], column: Mapping[str, int], names: Sequence[str]) -> npt.NDArray[np.float64]:
    """``score_inputs`` of a ``[row x parameter]`` matrix (``column``: parameter key -> column), for the inputs
    ``names`` only, as one new ``(len(names), rows)`` array: row ``i`` holds input ``names[i]`` of every row."""
    out = np.empty((len(names), len(matrix)))
    for row, name in zip(out, names, strict=True):
        params = SOURCES[name]
        row[:] = matrix[:, column[params[0]]]
        for fallback in params[1:]:
            np.copyto(row, matrix[:, column[fallback]], where=np.isnan(row))
    return out
