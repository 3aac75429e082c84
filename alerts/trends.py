"""Trend alarms over all beds at once, from per-minute history kept in ring buffers.

- **NEWS2 rise:** the current complete NEWS2 total is at least ``points`` above
  the lowest complete total seen in the last ``window_min`` minutes (the
  current minute included, so a rise inside one minute counts), and has been
  for ``persist_s`` (a one-reading wobble is not a trend).
- **Sustained SpO2 fall:** the mean SpO2 of each of the last ``sustain_min``
  minutes (the current one included) is at least ``points`` below the highest
  one-minute mean in the ``window_min`` minutes before them.

History is one slot per minute per bed (minimum NEWS2 total; SpO2 sum and
count), ``MAX_WINDOW_MIN`` slots deep; a slot older than the window is ignored.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from alerts.kinds import NEWS2_RISE, SPO2_FALL
from alerts.lifecycle import Condition
from alerts.policy import TrendRule

MAX_WINDOW_MIN = 240


class TrendTracker:
    def __init__(self) -> None:
        self.n = 0
        w = MAX_WINDOW_MIN
        self.minute = np.full(w, -1, dtype=np.int64)  # which minute each slot holds
        self.news2_min = np.full((0, w), np.nan)
        self.spo2_sum = np.zeros((0, w))
        self.spo2_cnt = np.zeros((0, w))
        self.rise_since = np.zeros(0, dtype=np.int64)
        self._groups_of: object = None
        self._groups: list[tuple[tuple[TrendRule, TrendRule], np.ndarray]] = []

    def resize(self, n: int) -> None:
        if n <= self.n:
            return
        w = MAX_WINDOW_MIN
        for name, fill in (("news2_min", np.nan), ("spo2_sum", 0.0), ("spo2_cnt", 0.0)):
            arr = np.full((n, w), fill)
            arr[: self.n] = getattr(self, name)
            setattr(self, name, arr)
        since = np.zeros(n, dtype=np.int64)
        since[: self.n] = self.rise_since
        self.rise_since = since
        self.n = n

    def update(self, now: int, news2_total: np.ndarray, spo2: np.ndarray) -> None:
        """Record this pass: complete NEWS2 totals (NaN if incomplete) and SpO2 (NaN if missing)."""
        self.resize(len(news2_total))
        m = now // 60_000
        s = int(m % MAX_WINDOW_MIN)
        if self.minute[s] != m:
            self.minute[s] = m
            self.news2_min[:, s] = np.nan
            self.spo2_sum[:, s] = 0.0
            self.spo2_cnt[:, s] = 0.0
        self.news2_min[:, s] = np.fmin(self.news2_min[:, s], news2_total)
        ok = ~np.isnan(spo2)
        self.spo2_sum[ok, s] += spo2[ok]
        self.spo2_cnt[ok, s] += 1

    def _slots(self, now: int, first_ago: int, last_ago: int) -> np.ndarray:
        """Slot indices holding minutes from ``first_ago`` to ``last_ago`` minutes back (inclusive, 0 = now)."""
        m = now // 60_000
        wanted = m - np.arange(first_ago, last_ago + 1)
        slots = (wanted % MAX_WINDOW_MIN).astype(int)
        return slots[self.minute[slots] == wanted]

    def news2_rise(self, now: int, total: np.ndarray, rule: TrendRule) -> np.ndarray:
        """Per bed: how far the current total stands above the window's lowest (NaN if unknown)."""
        slots = self._slots(now, 0, rule.window_min)
        if len(slots) == 0:
            return np.full(len(total), np.nan)
        with warnings.catch_warnings():  # all-NaN rows (no complete total yet) give NaN, as intended
            warnings.simplefilter("ignore", RuntimeWarning)
            base = np.nanmin(self.news2_min[: len(total)][:, slots], axis=1)
        return total - base

    def spo2_fall(self, now: int, n: int, rule: TrendRule) -> np.ndarray:
        """Per bed: the smallest fall of the recent minutes' means below the earlier peak (NaN if unknown)."""
        recent = self._slots(now, 0, rule.sustain_min - 1)
        before = self._slots(now, rule.sustain_min, rule.sustain_min + rule.window_min - 1)
        if len(recent) < rule.sustain_min or len(before) == 0:
            return np.full(n, np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():  # minutes without data give NaN, as intended
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_recent = self.spo2_sum[:n][:, recent] / self.spo2_cnt[:n][:, recent]
            mean_before = self.spo2_sum[:n][:, before] / self.spo2_cnt[:n][:, before]
            peak = np.nanmax(mean_before, axis=1)
            worst_recent = np.max(mean_recent, axis=1)  # NaN if any recent minute has no data
        return peak - worst_recent

    def conditions(
        self, now: int, beds: Sequence[str], wards: Sequence[str], total: np.ndarray, rules: Sequence[tuple[TrendRule, TrendRule]]
    ) -> dict[tuple[str, str], Condition]:
        """``rules[i]`` is bed i's (news2_rise, spo2_fall) rule pair from its ward's policy."""
        out: dict[tuple[str, str], Condition] = {}
        n = len(beds)
        if self._groups_of is not rules:  # the engine hands the same list until beds change
            by_rule: dict[tuple[TrendRule, TrendRule], list[int]] = {}
            for i, pair in enumerate(rules):
                by_rule.setdefault(pair, []).append(i)
            self._groups = [(pair, np.array(rows)) for pair, rows in by_rule.items()]
            self._groups_of = rules
        for (rise_rule, fall_rule), idx in self._groups:
            if rise_rule.enabled:
                rise = self.news2_rise(now, total, rise_rule)[idx]
                up = rise >= rise_rule.points
                since = self.rise_since[idx]
                since[up & (since == 0)] = now
                since[~up] = 0
                self.rise_since[idx] = since
                held = up & (now - since >= rise_rule.persist_s * 1000)
                for j in np.flatnonzero(held):
                    i = idx[j]
                    key = (beds[i], NEWS2_RISE)
                    out[key] = Condition(beds[i], beds[i], wards[i], key[1], rise_rule.priority,
                                       f"NEWS2 rising: up {int(rise[j])} to {int(total[i])} within {rise_rule.window_min} min",
                                       "a rise of 2 or more within an hour calls for review even below the alert bands")  # fmt: skip
            if fall_rule.enabled:
                fall = self.spo2_fall(now, n, fall_rule)[idx]
                for j in np.flatnonzero(fall >= fall_rule.points):
                    i = idx[j]
                    key = (beds[i], SPO2_FALL)
                    out[key] = Condition(beds[i], beds[i], wards[i], key[1], fall_rule.priority,
                                       f"SpO2 falling: {fall[j]:.1f} points below its peak for {fall_rule.sustain_min} min",
                                       f"one-minute means compared with the highest in the previous {fall_rule.window_min} min")  # fmt: skip
        return out
