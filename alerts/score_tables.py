"""Early-warning score tables: a score table file (``config/scores.yaml``) validated and compiled for NumPy.

Every band table of NEWS2, MEWS and qSOFA is data, so a hospital can adopt a
local MEWS variant by editing the YAML, or by loading its own copy with
``load_score_tables(path)``. Nothing is loaded at import: the caller (the
command line, ``teleicu.config_files``) loads the tables and hands them to the
score functions (``alerts.news2``, ``alerts.mews``, ``alerts.qsofa``) as ``tables=``.

The file has three sections, each with exactly these keys (``ScoresFile``):

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

Anything wrong raises ``ScoreConfigError`` (a ``wire.config.ConfigError``) whose
message names the file, then ``score.parameter``, then the row where there is one, e.g.
``config/scores.yaml: mews.hr: row 2: gap between previous max 40.0 and min 42``.
Refused: unreadable or non-YAML files, files over ``wire.config.MAX_FILE_BYTES``,
duplicate YAML keys, unknown or missing keys, wrong types, gaps, overlaps, edges
out of order or off the precision grid, edges beyond ``alerts.bands.MAX_BOUND_UNITS``
whole units, scores outside 0..3, and triggers that no total can reach.

``ScoreTables.plan`` is the three scores compiled together for the hub's pass (``alerts.score_plan``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import ConfigDict, ValidationInfo, field_validator, model_validator

from alerts.bands import BandTable
from alerts.lookup import Grid
from wire.config import ConfigError, ConfigModel, Problem, kind, load, validate
from wire.vocabulary import ACVPU, O2

if TYPE_CHECKING:
    from alerts.score_plan import ScorePlan

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


class ScoreConfigError(ConfigError):
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

    @property
    def lookup(self) -> npt.NDArray[np.float64]:
        """The score of each code, then NaN at index ``len(scores)``, the slot of a missing code."""
        return self._values

    def score(self, codes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Score every code: float array of the same shape, NaN where the code is NaN.

        Raises ``ValueError`` for a code that is not one of ``0..len(scores)-1``.
        """
        return self._values[self.index(codes)]

    def index(self, codes: npt.ArrayLike) -> npt.NDArray[np.intp]:
        """Every code as an index into ``lookup`` (``len(scores)`` where the code is NaN).

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
        return np.where(missing, float(last), column).astype(np.intp)


def index_categories(tables: Sequence[CategoryTable], codes: npt.NDArray[np.float64], out: npt.NDArray[np.intp]) -> None:
    """``tables[i].index`` of row ``i`` of ``codes`` (``(tables, beds)``), written into ``out``: the same
    indexes and, for an invalid code, the same ``ValueError``, from a few passes over all rows at once."""
    last = np.array([[len(table.scores)] for table in tables], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        fraction = np.floor(codes)
        np.subtract(codes, fraction, out=fraction)  # NaN for NaN and infinities, which the range check catches
        bad = np.fmin.reduce(codes, axis=1, initial=np.inf) < 0.0  # the reductions skip NaN
        bad |= np.fmax.reduce(codes, axis=1, initial=-np.inf) > last[:, 0] - 1.0
        bad |= np.fmax.reduce(fraction, axis=1, initial=0.0) > 0.0
    for i in np.flatnonzero(bad).tolist():  # the first table with an invalid code raises its own error
        tables[i].index(codes[i])
        raise AssertionError(f"{tables[i].name}: a code failed the checks here but not CategoryTable.index")
    np.copyto(fraction, codes)
    np.copyto(fraction, last, where=np.isnan(codes))
    np.copyto(out, fraction, casting="unsafe")


@dataclass(frozen=True)
class News2Tables:
    """NEWS2 (RCP 2017): band tables, category scores and the clinical-risk totals."""

    BANDS: ClassVar[dict[str, str]] = _NEWS2_BANDS  # band table -> the input it bands

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
    grids: dict[str, Grid] = field(init=False, repr=False, compare=False)  # by input (rr, spo2, sbp, hr, temp)
    lookups: dict[str, npt.NDArray[np.float64]] = field(init=False, repr=False, compare=False)  # by band input

    def __post_init__(self) -> None:
        grids = _grids(self, _NEWS2_BANDS)
        lookups = {key: grids[key].lookup(getattr(self, key)) for key in ("rr", "sbp", "hr", "temp")}
        lookups["spo2"] = self.spo2_lookup(grids["spo2"])
        object.__setattr__(self, "grids", grids)
        object.__setattr__(self, "lookups", lookups)

    def spo2_state(self, scale2: npt.NDArray[np.bool_], o2_index: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """Which block of ``lookups["spo2"]`` each bed reads: 0 on scale 1; on scale 2, 1 + its O2 index
        (``o2.index``: air, oxygen, then missing). Each block is ``grids["spo2"].missing + 1`` long."""
        return scale2 * (o2_index + 1)

    def spo2_lookup(self, grid: Grid) -> npt.NDArray[np.float64]:
        """The SpO2 sub-score on ``grid`` in blocks by ``spo2_state``: scale 1, then scale 2 on each O2
        choice, then scale 2 with O2 missing, known only where the air and oxygen tables agree."""
        on_scale2 = {O2.AIR: grid.lookup(self.spo2_scale2_air), O2.OXYGEN: grid.lookup(self.spo2_scale2_oxygen)}
        air, oxygen = on_scale2[O2.AIR], on_scale2[O2.OXYGEN]
        blocks = [grid.lookup(self.spo2_scale1), *(on_scale2[code] for code in sorted(O2)), np.where(air == oxygen, air, np.nan)]
        return np.concatenate(blocks)


@dataclass(frozen=True)
class MewsTables:
    """MEWS (Subbe 2001, or a local variant): band tables, AVPU scores and the trigger."""

    BANDS: ClassVar[dict[str, str]] = _MEWS_BANDS  # band table -> the input it bands
    sbp: BandTable
    hr: BandTable
    rr: BandTable
    temp: BandTable
    avpu: CategoryTable  # by ACVPU code; C scores like V by default
    trigger: int  # a total from here triggers
    grids: dict[str, Grid] = field(init=False, repr=False, compare=False)  # by input (sbp, hr, rr, temp)
    lookups: dict[str, npt.NDArray[np.float64]] = field(init=False, repr=False, compare=False)  # by band table

    def __post_init__(self) -> None:
        grids = _grids(self, _MEWS_BANDS)
        object.__setattr__(self, "grids", grids)
        object.__setattr__(self, "lookups", {key: grids[key].lookup(getattr(self, key)) for key in _MEWS_BANDS})


@dataclass(frozen=True)
class QsofaTables:
    """qSOFA (Sepsis-3): one point per criterion, each as a 0/1 table; positive from ``trigger``."""

    BANDS: ClassVar[dict[str, str]] = {"rr": "rr", "sbp": "sbp"}  # band table -> the input it bands
    rr: BandTable  # 1 from rr_at_least up
    sbp: BandTable  # 1 up to sbp_at_most
    mentation: CategoryTable  # by ACVPU code: 1 for altered mentation
    rr_at_least: float
    sbp_at_most: float
    trigger: int
    grids: dict[str, Grid] = field(init=False, repr=False, compare=False)  # by input (rr, sbp)
    lookups: dict[str, npt.NDArray[np.float64]] = field(init=False, repr=False, compare=False)  # by band table

    def __post_init__(self) -> None:
        grids = _grids(self, self.BANDS)
        object.__setattr__(self, "grids", grids)
        object.__setattr__(self, "lookups", {key: grids[key].lookup(getattr(self, key)) for key in ("rr", "sbp")})


@dataclass(frozen=True)
class ScoreTables:
    """Every score's tables, and the file they came from."""

    news2: News2Tables
    mews: MewsTables
    qsofa: QsofaTables
    source: str

    @functools.cached_property
    def plan(self) -> ScorePlan:
        """The three scores compiled together for the hub's pass (``alerts.scoring``), on first use."""
        from alerts.score_plan import compile_plan  # here, not above: it imports this module

        return compile_plan(self)


def _grids(tables: object, bands: dict[str, str]) -> dict[str, Grid]:
    """One grid per input, over every band table (``bands``: attribute -> input) that reads it."""
    inputs = dict.fromkeys(bands.values())
    return {name: Grid.over([getattr(tables, key) for key, source in bands.items() if source == name]) for name in inputs}


def load_score_tables(path: Path | str | Traversable) -> ScoreTables:
    """Read and validate a score table file."""
    path = Path(path) if isinstance(path, str) else path
    return load(ScoresFile, path, "score tables", ScoreConfigError).tables(str(path))


def parse_score_tables(raw: Any, source: str = "score tables") -> ScoreTables:
    """Validate already-parsed YAML; ``source`` names it in error messages."""
    return validate(ScoresFile, raw, source, ScoreConfigError).tables(source)


# --- the file ----------------------------------------------------------------------------------


class _Section(ConfigModel):
    """A score's section: band tables (compiled by ``BandTable.from_rows``) and category scores."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    SCORE: ClassVar[str]
    BANDS: ClassVar[dict[str, str]]  # band table key -> the input it bands

    @classmethod
    def _band_table(cls, rows: Any, info: ValidationInfo) -> BandTable:
        name = f"{cls.SCORE}.{info.field_name}"
        try:
            table = BandTable.from_rows(name, PRECISION[cls.BANDS[str(info.field_name)]], rows)
        except ValueError as exc:
            raise Problem(str(exc).removeprefix(f"{name}: ")) from None
        for i, value in enumerate(table.scores):
            if not 0 <= value <= MAX_SUBSCORE:
                raise Problem(f"row {i + 1}: score {value} is outside 0..{MAX_SUBSCORE}")
        return table

    def _check_trigger(self, at: str | tuple[str, ...], value: int, highest: int) -> None:
        if not 1 <= value <= highest:
            raise Problem(f"{value} is outside 1..{highest}, the totals these tables can reach", at)


class _Categories(ConfigModel):
    """Scores per category label; compiled into a ``CategoryTable``."""

    INPUT: ClassVar[str]

    @model_validator(mode="after")
    def _in_range(self) -> _Categories:
        for label, value in self:
            if not 0 <= value <= MAX_SUBSCORE:
                raise Problem(f"score {value} is outside 0..{MAX_SUBSCORE}", label)
        return self

    def table(self, name: str) -> CategoryTable:
        labels = tuple(type(self).model_fields)
        return CategoryTable(name, self.INPUT, labels, tuple(getattr(self, label) for label in labels))


class AcvpuScores(_Categories):
    INPUT = "acvpu"
    A: int
    C: int
    V: int
    P: int
    U: int


class O2Scores(_Categories):
    INPUT = "o2"
    air: int
    oxygen: int


# a category's score is looked up by its code, so the fields must be in the vocabulary's code order
assert tuple(AcvpuScores.model_fields) == _ACVPU_LABELS and tuple(O2Scores.model_fields) == _O2_LABELS


class News2Trigger(ConfigModel):
    medium: int  # a total from here is medium risk
    high: int  # a total from here is high risk


class News2Section(_Section):
    SCORE = "news2"
    BANDS = _NEWS2_BANDS
    rr: BandTable
    spo2_scale1: BandTable
    spo2_scale2_air: BandTable
    spo2_scale2_oxygen: BandTable
    sbp: BandTable
    hr: BandTable
    temp: BandTable
    o2: O2Scores
    acvpu: AcvpuScores
    trigger: News2Trigger

    @field_validator(*_NEWS2_BANDS, mode="plain")
    @classmethod
    def _bands(cls, rows: Any, info: ValidationInfo) -> BandTable:
        return cls._band_table(rows, info)

    @model_validator(mode="after")
    def _triggers(self) -> News2Section:
        spo2_max = max(max(table.scores) for table in (self.spo2_scale1, self.spo2_scale2_air, self.spo2_scale2_oxygen))
        highest = spo2_max + max(self.o2.air, self.o2.oxygen) + max(self.acvpu.model_dump().values())
        highest += sum(max(table.scores) for table in (self.rr, self.sbp, self.hr, self.temp))
        self._check_trigger(("trigger", "medium"), self.trigger.medium, highest)
        self._check_trigger(("trigger", "high"), self.trigger.high, highest)
        if not self.trigger.medium < self.trigger.high:
            raise Problem(f"medium ({self.trigger.medium}) must be below high ({self.trigger.high})", "trigger")
        return self

    def tables(self) -> News2Tables:
        bands = {key: getattr(self, key) for key in _NEWS2_BANDS}
        return News2Tables(**bands, o2=self.o2.table("news2.o2"), acvpu=self.acvpu.table("news2.acvpu"),
                           medium=self.trigger.medium, high=self.trigger.high)  # fmt: skip


class MewsSection(_Section):
    SCORE = "mews"
    BANDS = _MEWS_BANDS
    sbp: BandTable
    hr: BandTable
    rr: BandTable
    temp: BandTable
    avpu: AcvpuScores
    trigger: int  # a total from here triggers

    @field_validator(*_MEWS_BANDS, mode="plain")
    @classmethod
    def _bands(cls, rows: Any, info: ValidationInfo) -> BandTable:
        return cls._band_table(rows, info)

    @model_validator(mode="after")
    def _reachable(self) -> MewsSection:
        highest = sum(max(getattr(self, key).scores) for key in _MEWS_BANDS) + max(self.avpu.model_dump().values())
        self._check_trigger("trigger", self.trigger, highest)
        return self

    def tables(self) -> MewsTables:
        bands = {key: getattr(self, key) for key in _MEWS_BANDS}
        return MewsTables(**bands, avpu=self.avpu.table("mews.avpu"), trigger=self.trigger)


class QsofaSection(_Section):
    SCORE = "qsofa"
    BANDS = {}
    rr_at_least: float
    sbp_at_most: float
    altered_mentation: CategoryTable
    trigger: int

    @field_validator("rr_at_least", "sbp_at_most")
    @classmethod
    def _on_grid(cls, value: float, info: ValidationInfo) -> float:
        precision = PRECISION[str(info.field_name).split("_")[0]]
        units = value * 10.0**precision
        if abs(units - round(units)) > 1e-6:
            raise ValueError(f"{value:g} is finer than the input precision ({precision} decimals)")
        return value

    @field_validator("altered_mentation", mode="plain")
    @classmethod
    def _altered_mentation(cls, raw: Any) -> CategoryTable:
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
            raise ValueError(f"expected a list of ACVPU levels such as [C, V, P, U], not {kind(raw)}")
        altered: set[str] = set()
        for i, level in enumerate(raw):
            if level not in _ACVPU_LABELS:
                raise ValueError(f"item {i + 1}: {level!r} is not one of {', '.join(_ACVPU_LABELS)}")
            if level in altered:
                raise ValueError(f"item {i + 1}: {level} is listed twice")
            if level == ACVPU.A.name:
                raise ValueError(f"item {i + 1}: A (alert) cannot count as altered mentation")
            altered.add(level)
        if not altered:
            raise ValueError("must list at least one ACVPU level")
        return CategoryTable("qsofa.altered_mentation", "acvpu", _ACVPU_LABELS,
                             tuple(int(label in altered) for label in _ACVPU_LABELS))  # fmt: skip

    @model_validator(mode="after")
    def _reachable(self) -> QsofaSection:
        self._check_trigger("trigger", self.trigger, 1 + 1 + max(self.altered_mentation.scores))
        return self

    def tables(self) -> QsofaTables:
        step = 10.0 ** -PRECISION["rr"]
        rr = BandTable("qsofa.rr", PRECISION["rr"], (self.rr_at_least - step,), (0, 1))
        sbp = BandTable("qsofa.sbp", PRECISION["sbp"], (self.sbp_at_most,), (1, 0))
        return QsofaTables(rr=rr, sbp=sbp, mentation=self.altered_mentation, rr_at_least=self.rr_at_least,
                           sbp_at_most=self.sbp_at_most, trigger=self.trigger)  # fmt: skip


class ScoresFile(ConfigModel):
    """A score table file: one section per score."""

    news2: News2Section
    mews: MewsSection
    qsofa: QsofaSection

    def tables(self, source: str) -> ScoreTables:
        return ScoreTables(news2=self.news2.tables(), mews=self.mews.tables(), qsofa=self.qsofa.tables(), source=source)
