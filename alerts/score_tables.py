"""Early-warning score tables: ``config/scores.yaml`` loaded, validated and typed.

Every band table of NEWS2, MEWS and qSOFA is data, so a hospital can adopt a
local MEWS variant by editing the YAML, or by loading its own copy with
``load_score_tables(path)``. The score functions (``alerts.news2``,
``alerts.mews``, ``alerts.qsofa``) take the typed tables as ``tables=`` and use
``default_score_tables()`` when none are given.

The file has three sections, each with exactly these keys:

- ``news2``: band tables ``rr``, ``spo2_scale1``, ``spo2_scale2_air``,
  ``spo2_scale2_oxygen``, ``sbp``, ``hr``, ``temp``; category scores ``o2``
  (``air``, ``oxygen``) and ``acvpu`` (``A C V P U``); ``trigger`` with the
  totals ``medium`` and ``high`` where those clinical-risk bands start.
- ``mews``: band tables ``sbp``, ``hr``, ``rr``, ``temp``; category scores
  ``avpu`` (``A C V P U``; read from the ACVPU input); ``trigger``, the total
  from which MEWS triggers.
- ``qsofa``: ``rr_at_least``, ``sbp_at_most`` (a point each), the list
  ``altered_mentation`` of ACVPU levels that score a point, and ``trigger``.

A band table is a list of ``{min, max, score}`` rows as ``BandTable.from_rows``
reads them. Inputs are rounded half up to the chart precision in ``PRECISION``
before banding (``shared/clinical/scores.md``), so edges must lie on that grid.

Anything wrong raises ``ScoreConfigError`` (a ``ValueError``) whose message
names the file, then ``score.parameter``, then the row where there is one, e.g.
``config/scores.yaml: mews.hr: row 2: gap between previous max 40.0 and min 42``.
Refused: unreadable or non-YAML files, files over ``MAX_FILE_BYTES``, duplicate
YAML keys, unknown or missing keys, wrong types, gaps, overlaps, edges out of
order or off the precision grid, scores outside 0..3, and triggers that no
total can reach.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from alerts.bands import BandTable
from teleicu.paths import CONFIG_DIR
from wire.vocabulary import ACVPU, O2

DEFAULT_FILE = CONFIG_DIR / "scores.yaml"

#: a score table file is small; anything bigger is refused unread
MAX_FILE_BYTES = 1 << 20

#: every sub-score of every table lies in 0..MAX_SUBSCORE
MAX_SUBSCORE = 3

#: decimal places each input is rounded to before banding (scores.md, "Input precision")
PRECISION: dict[str, int] = {"rr": 0, "spo2": 0, "sbp": 0, "hr": 0, "temp": 1}

_ACVPU_LABELS: tuple[str, ...] = tuple(level.name for level in ACVPU)
_O2_LABELS: tuple[str, ...] = tuple(choice.name.lower() for choice in O2)

#: band tables of each score: YAML key -> the input (and so the precision) it bands
_NEWS2_BANDS: dict[str, str] = {
    "rr": "rr",
    "spo2_scale1": "spo2",
    "spo2_scale2_air": "spo2",
    "spo2_scale2_oxygen": "spo2",
    "sbp": "sbp",
    "hr": "hr",
    "temp": "temp",
}
_MEWS_BANDS: dict[str, str] = {"sbp": "sbp", "hr": "hr", "rr": "rr", "temp": "temp"}
_SECTIONS: dict[str, tuple[str, ...]] = {
    "news2": (*_NEWS2_BANDS, "o2", "acvpu", "trigger"),
    "mews": (*_MEWS_BANDS, "avpu", "trigger"),
    "qsofa": ("rr_at_least", "sbp_at_most", "altered_mentation", "trigger"),
}
_NEWS2_TRIGGER_KEYS: tuple[str, ...] = ("medium", "high")


class ScoreConfigError(ValueError):
    """A score table file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class CategoryTable:
    """Scores for category codes (ACVPU levels, air/oxygen), applied to whole arrays.

    ``scores[code]`` is the score of ``code``; ``labels[code]`` its name.
    ``input`` names the input the codes come from, for error messages.
    """

    name: str
    input: str
    labels: tuple[str, ...]
    scores: tuple[int, ...]
    _values: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.scores) or not self.scores:
            raise ValueError(f"{self.name}: {len(self.labels)} labels but {len(self.scores)} scores")
        # one extra slot, NaN, for a missing code
        object.__setattr__(self, "_values", np.array([*self.scores, np.nan], dtype=np.float64))

    def score(self, codes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Score every code: float array of the same shape, NaN where the code is NaN.

        Raises ``ValueError`` for a code that is not one of ``0..len(scores)-1``.
        """
        column = np.array(codes, dtype=np.float64, copy=None, order="C")  # a strided matrix column is copied once
        last = len(self.scores)
        missing = np.isnan(column)
        with np.errstate(invalid="ignore"):
            valid = missing | ((column >= 0.0) & (column < last) & (np.floor(column) == column))
        if not valid.all():
            bad = float(column[~valid].flat[0])
            known = ", ".join(f"{code} {label}" for code, label in enumerate(self.labels))
            raise ValueError(f"{self.name}: {self.input} code {bad} is not one of {list(range(last))} ({known})")
        return self._values[np.where(missing, float(last), column).astype(np.intp)]


@dataclass(frozen=True)
class News2Tables:
    """NEWS2 (RCP 2017): band tables, category scores and the clinical-risk totals."""

    rr: BandTable
    spo2_scale1: BandTable
    spo2_scale2_air: BandTable
    spo2_scale2_oxygen: BandTable
    sbp: BandTable
    hr: BandTable
    temp: BandTable
    o2: CategoryTable  # by O2 code: air, oxygen
    acvpu: CategoryTable  # by ACVPU code: A, C, V, P, U
    medium: int  # a total from here is medium risk
    high: int  # a total from here is high risk


@dataclass(frozen=True)
class MewsTables:
    """MEWS (Subbe 2001, or a local variant): band tables, AVPU scores and the trigger."""

    sbp: BandTable
    hr: BandTable
    rr: BandTable
    temp: BandTable
    avpu: CategoryTable  # by ACVPU code; C scores like V by default
    trigger: int  # a total from here triggers


@dataclass(frozen=True)
class QsofaTables:
    """qSOFA (Sepsis-3): one point per criterion, each as a 0/1 table; positive from ``trigger``."""

    rr: BandTable  # 1 from rr_at_least up
    sbp: BandTable  # 1 up to sbp_at_most
    mentation: CategoryTable  # by ACVPU code: 1 for altered mentation
    rr_at_least: float
    sbp_at_most: float
    trigger: int


@dataclass(frozen=True)
class ScoreTables:
    """Every score's tables, and the file they came from."""

    news2: News2Tables
    mews: MewsTables
    qsofa: QsofaTables
    source: str


def load_score_tables(path: Path | str | None = None) -> ScoreTables:
    """Read and validate a score table file (default ``config/scores.yaml``)."""
    path = DEFAULT_FILE if path is None else Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScoreConfigError(f"{path}: cannot read score tables: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ScoreConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not a score table file")
    try:
        raw = yaml.load(data, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScoreConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    return parse_score_tables(raw, str(path))


@functools.cache
def default_score_tables() -> ScoreTables:
    """The tables of ``config/scores.yaml``, loaded once."""
    return load_score_tables(DEFAULT_FILE)


def parse_score_tables(raw: Any, source: str = "score tables") -> ScoreTables:
    """Validate already-parsed YAML; ``source`` names it in error messages."""
    sections = _keys(source, "", raw, tuple(_SECTIONS))
    parsed = {score: _keys(source, score, sections[score], keys) for score, keys in _SECTIONS.items()}
    return ScoreTables(
        news2=_news2(source, parsed["news2"]),
        mews=_mews(source, parsed["mews"]),
        qsofa=_qsofa(source, parsed["qsofa"]),
        source=source,
    )


# --- sections ----------------------------------------------------------------------------------


def _news2(source: str, raw: Mapping[str, Any]) -> News2Tables:
    bands = {key: _bands(source, "news2", key, raw[key], given) for key, given in _NEWS2_BANDS.items()}
    o2 = _categories(source, "news2", "o2", raw["o2"], "o2", _O2_LABELS)
    acvpu = _categories(source, "news2", "acvpu", raw["acvpu"], "acvpu", _ACVPU_LABELS)
    spo2_max = max(max(bands[key].scores) for key in ("spo2_scale1", "spo2_scale2_air", "spo2_scale2_oxygen"))
    highest = spo2_max + max(o2.scores) + max(acvpu.scores)
    highest += sum(max(bands[key].scores) for key in ("rr", "sbp", "hr", "temp"))
    trigger = _keys(source, "news2.trigger", raw["trigger"], _NEWS2_TRIGGER_KEYS)
    medium = _trigger(source, "news2.trigger.medium", trigger["medium"], highest)
    high = _trigger(source, "news2.trigger.high", trigger["high"], highest)
    if not medium < high:
        raise ScoreConfigError(f"{source}: news2.trigger: medium ({medium}) must be below high ({high})")
    return News2Tables(**bands, o2=o2, acvpu=acvpu, medium=medium, high=high)


def _mews(source: str, raw: Mapping[str, Any]) -> MewsTables:
    bands = {key: _bands(source, "mews", key, raw[key], given) for key, given in _MEWS_BANDS.items()}
    avpu = _categories(source, "mews", "avpu", raw["avpu"], "acvpu", _ACVPU_LABELS)
    highest = sum(max(table.scores) for table in bands.values()) + max(avpu.scores)
    trigger = _trigger(source, "mews.trigger", raw["trigger"], highest)
    return MewsTables(**bands, avpu=avpu, trigger=trigger)


def _qsofa(source: str, raw: Mapping[str, Any]) -> QsofaTables:
    rr_at_least = _on_grid(source, "qsofa.rr_at_least", raw["rr_at_least"], PRECISION["rr"])
    sbp_at_most = _on_grid(source, "qsofa.sbp_at_most", raw["sbp_at_most"], PRECISION["sbp"])
    step = 10.0 ** -PRECISION["rr"]
    rr = BandTable("qsofa.rr", PRECISION["rr"], (rr_at_least - step,), (0, 1))
    sbp = BandTable("qsofa.sbp", PRECISION["sbp"], (sbp_at_most,), (1, 0))
    mentation = _altered_mentation(source, raw["altered_mentation"])
    trigger = _trigger(source, "qsofa.trigger", raw["trigger"], 1 + 1 + max(mentation.scores))
    return QsofaTables(
        rr=rr, sbp=sbp, mentation=mentation, rr_at_least=rr_at_least, sbp_at_most=sbp_at_most, trigger=trigger
    )


# --- pieces ------------------------------------------------------------------------------------


def _keys(source: str, where: str, raw: Any, expected: tuple[str, ...]) -> Mapping[str, Any]:
    """``raw`` as a mapping with exactly the ``expected`` keys."""
    at = f"{source}: {where}" if where else source
    if not isinstance(raw, Mapping):
        raise ScoreConfigError(f"{at}: expected a mapping with keys {', '.join(expected)}, not {_kind(raw)}")
    unknown = [str(key) for key in raw if key not in expected]
    if unknown:
        raise ScoreConfigError(f"{at}: unknown keys {unknown}; expected {', '.join(expected)}")
    missing = [key for key in expected if key not in raw]
    if missing:
        raise ScoreConfigError(f"{at}: missing {', '.join(missing)}")
    return raw


def _bands(source: str, score: str, key: str, rows: Any, given: str) -> BandTable:
    name = f"{score}.{key}"
    try:
        table = BandTable.from_rows(name, PRECISION[given], rows)
    except ValueError as exc:
        raise ScoreConfigError(f"{source}: {exc}") from None
    for i, value in enumerate(table.scores):
        if not 0 <= value <= MAX_SUBSCORE:
            raise ScoreConfigError(f"{source}: {name}: row {i + 1}: score {value} is outside 0..{MAX_SUBSCORE}")
    return table


def _categories(source: str, score: str, key: str, raw: Any, given: str, labels: tuple[str, ...]) -> CategoryTable:
    name = f"{score}.{key}"
    table = _keys(source, name, raw, labels)
    scores = []
    for label in labels:
        value = table[label]
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise ScoreConfigError(f"{source}: {name}: {label}: score must be a whole number, not {value!r}")
        if not 0 <= value <= MAX_SUBSCORE:
            raise ScoreConfigError(f"{source}: {name}: {label}: score {value} is outside 0..{MAX_SUBSCORE}")
        scores.append(int(value))
    return CategoryTable(name, given, labels, tuple(scores))


def _altered_mentation(source: str, raw: Any) -> CategoryTable:
    name = "qsofa.altered_mentation"
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise ScoreConfigError(
            f"{source}: {name}: expected a list of ACVPU levels such as [C, V, P, U], not {_kind(raw)}"
        )
    altered: set[str] = set()
    for i, level in enumerate(raw):
        if level not in _ACVPU_LABELS:
            raise ScoreConfigError(
                f"{source}: {name}: item {i + 1}: {level!r} is not one of {', '.join(_ACVPU_LABELS)}"
            )
        if level in altered:
            raise ScoreConfigError(f"{source}: {name}: item {i + 1}: {level} is listed twice")
        if level == ACVPU.A.name:
            raise ScoreConfigError(f"{source}: {name}: item {i + 1}: A (alert) cannot count as altered mentation")
        altered.add(level)
    if not altered:
        raise ScoreConfigError(f"{source}: {name}: must list at least one ACVPU level")
    return CategoryTable(name, "acvpu", _ACVPU_LABELS, tuple(int(label in altered) for label in _ACVPU_LABELS))


def _trigger(source: str, where: str, value: Any, highest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ScoreConfigError(f"{source}: {where}: must be a whole number, not {value!r}")
    if not 1 <= value <= highest:
        raise ScoreConfigError(f"{source}: {where}: {value} is outside 1..{highest}, the totals these tables can reach")
    return int(value)


def _on_grid(source: str, where: str, value: Any, precision: int) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(float(value)):
        raise ScoreConfigError(f"{source}: {where}: must be a finite number, not {value!r}")
    units = float(value) * 10.0**precision
    if abs(units - round(units)) > 1e-6:
        raise ScoreConfigError(f"{source}: {where}: {value} is finer than the input precision ({precision} decimals)")
    return float(value)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A one-line account of a YAML error: what, and at which line and column."""
    if not isinstance(exc, yaml.MarkedYAMLError) or not exc.problem:
        return str(exc)
    context = f"{exc.context}: " if exc.context else ""
    mark = exc.problem_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{context}{exc.problem}{where}"


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the safe loader reports it below
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found key {key!r} twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
