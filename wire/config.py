"""Configuration loading shared by the edge agent and the hub: one error class, strict models, one message format.

Every configuration file (YAML) and the store URL's options are described by
models derived from ``ConfigModel`` (pydantic v2): unknown keys are refused,
types are checked strictly (a number is not a string, a bool is not a number,
NaN is not a number), and each model's validators keep its semantic checks.
Anything wrong raises ``ConfigError`` (a ``ValueError``), or the subclass the
caller names. Each line of its message is one problem, naming the source (a
file), the key path and the problem::

    edge-A.yaml: devices[2].baud: must be a whole number, not '9600'
    alarms.yaml: wards.COPD.limits.spo2: low 95 must be below high 90

A validator that finds a problem below the key it checks raises
``Problem(text, at=key path)``, so the message names the key itself. A value
annotated with ``Expect("a device path or URL")`` is described that way when
its type is wrong ("must be a device path or URL, not None").

Files are read by ``read_yaml``: at most ``MAX_FILE_BYTES``, YAML's safe
loader, and a key given twice in one mapping is refused (YAML would silently
keep the last). ``load`` reads and validates in one step.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic.fields import FieldInfo

#: a configuration file is small; anything bigger is refused unread
MAX_FILE_BYTES = 1 << 20

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration that cannot be used. ``source`` and ``problems`` (key path, problem) are set when known."""

    def __init__(self, message: str, *, source: str = "", problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.source = source
        self.problems = tuple(problems)


class Problem(ValueError):
    """Raised inside a validator: ``text`` is the problem, ``at`` the key path below the value being validated."""

    def __init__(self, text: str, at: str | int | Loc = ()) -> None:
        super().__init__(text)
        self.items: list[tuple[Loc, str]] = [(at if isinstance(at, tuple) else (at,), text)]

    @classmethod
    def many(cls, items: Iterable[tuple[Loc, str]]) -> Problem:
        items = list(items)
        first = cls(items[0][1], items[0][0])
        first.items = items
        return first


class Expect:
    """``Annotated[str, Expect("a device path or URL")]``: what the value must be, for the message when its type is wrong."""

    def __init__(self, text: str) -> None:
        self.text = text


class ConfigModel(BaseModel):
    """Base of every configuration model: no unknown keys, strict types, no NaN or infinity, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def config_error(error: type[ConfigError], source: str, items: Sequence[tuple[Loc, str]]) -> ConfigError:
    """``error`` with one line per problem: ``source: key.path: problem``."""
    problems = [(format_path(loc), text) for loc, text in items]
    lines = [": ".join(part for part in (source, path, text) if part) for path, text in problems]
    return error("\n".join(lines), source=source, problems=problems)


def validate(
    model: type[M], raw: Any, source: str, error: type[ConfigError] = ConfigError, context: Mapping[str, Any] | None = None
) -> M:
    """``raw`` (parsed YAML, a dict of options) as ``model``, or ``error`` naming ``source``, key and problem."""
    try:
        return model.model_validate(raw, context=dict(context) if context is not None else None)
    except ValidationError as exc:
        raise config_error(error, source, problems(exc, model)) from None


def load(
    model: type[M], file: Path | Traversable, what: str, error: type[ConfigError] = ConfigError,
    context: Mapping[str, Any] | None = None,
) -> M:  # fmt: skip
    """Read the YAML ``file`` (a ``what``, for messages) and validate it as ``model``."""
    return validate(model, read_yaml(file, what, error), str(file), error, context)


def read_secret(config: Path, key: str, secret_file: Path, error: type[ConfigError] = ConfigError) -> SecretStr:
    """A machine-made secret from the file a config key names (its first line, 20 to 256 characters, no spaces);
    ``error`` when it cannot be read or does not look like one. Never logged: it comes back as a ``SecretStr``."""
    try:
        text = secret_file.read_text().strip()
    except OSError as exc:
        raise error(f"{config}: {key}: cannot read {secret_file}: {exc.strerror}") from None
    if not 20 <= len(text) <= 256 or any(ch <= " " for ch in text):
        raise error(f"{config}: {key}: {secret_file} does not hold a secret as teleicu prints it")
    return SecretStr(text)


# --- YAML ---------------------------------------------------------------------------------------


def read_yaml(file: Path | Traversable, what: str, error: type[ConfigError] = ConfigError) -> Any:
    """The parsed content of ``file``; ``error`` if it cannot be read, is too big or is not valid YAML."""
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise error(f"{file}: cannot read {what}: {exc.strerror or exc}", source=str(file)) from None
    if len(data) > MAX_FILE_BYTES:
        raise error(f"{file}: larger than {MAX_FILE_BYTES} bytes; not a {what} file", source=str(file))
    try:
        return yaml.load(data, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise error(f"{file}: not valid YAML: {_yaml_problem(exc)}", source=str(file)) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A one-line account of a YAML error: what, and at which line and column."""
    if not isinstance(exc, yaml.MarkedYAMLError) or not exc.problem:
        return str(exc)
    context = f"{exc.context}: " if exc.context else ""
    mark = exc.problem_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{context}{exc.problem}{where}"


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


# --- messages ----------------------------------------------------------------------------------


def format_path(loc: Loc) -> str:
    """``("devices", 2, "baud")`` -> ``devices[2].baud``."""
    out = ""
    for step in loc:
        if step == "[key]":  # pydantic's mark for a mapping's key (the key itself is the step before)
            continue
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def kind(value: Any) -> str:
    """A short account of a value of the wrong kind: ``nothing``, ``list [1, 2]``."""
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]


def unknown_keys(unknown: Sequence[Any], expected: Iterable[str]) -> str:
    known = ", ".join(expected)
    return f"unknown keys {[str(key) for key in unknown]}; expected {known or 'none'}"


def missing_keys(missing: Iterable[str]) -> str:
    return f"missing {', '.join(missing)}"


def check_keys(raw: Mapping[Any, Any], expected: Sequence[str], *, required: bool = True) -> None:
    """Raise ``Problem`` if the mapping ``raw`` has a key outside ``expected`` (or, if ``required``, lacks one)."""
    unknown = [key for key in raw if key not in expected]
    if unknown:
        raise Problem(unknown_keys(unknown, expected))
    missing = [key for key in expected if key not in raw] if required else []
    if missing:
        raise Problem(missing_keys(missing))


_WHOLE = frozenset({"int_type", "int_parsing", "int_from_float", "int_parsing_size"})
_NUMBER = frozenset({"float_type", "float_parsing", "finite_number"})
_TYPE = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
}
_BOUNDS = {"greater_than_equal": ("at least", "ge"), "greater_than": ("above", "gt"),
           "less_than_equal": ("at most", "le"), "less_than": ("below", "lt")}  # fmt: skip


def problems(exc: ValidationError, model: type[BaseModel]) -> list[tuple[Loc, str]]:
    """Each error of ``exc`` as (key path, problem); unknown and missing keys grouped per mapping, unknown first."""
    order: list[tuple[Loc, str | None]] = []  # (key path, problem), or (mapping, None) for its key problems
    unknown: dict[Loc, list[Any]] = {}
    missing: dict[Loc, list[Any]] = {}
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        if error["type"] in ("extra_forbidden", "missing"):
            parent = loc[:-1]
            if parent not in unknown and parent not in missing:
                order.append((parent, None))
            (unknown if error["type"] == "extra_forbidden" else missing).setdefault(parent, []).append(loc[-1])
            continue
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, Problem):
            order.extend((loc + at, text) for at, text in cause.items)
        else:
            order.append((loc, _describe(error, *_walk(model, loc))))
    items: list[tuple[Loc, str]] = []
    for loc, text in order:
        if text is not None:
            items.append((loc, text))
            continue
        if loc in unknown:
            items.append((loc, unknown_keys(unknown[loc], _keys_at(model, loc))))
        if loc in missing:
            items.append((loc, missing_keys(str(key) for key in missing[loc])))
    return items


def _describe(error: Any, annotation: Any, field: FieldInfo | None) -> str:
    kind_, given = error["type"], error.get("input")
    ctx = error.get("ctx", {})
    if kind_ in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    metadata = field.metadata if field is not None else list(typing.get_args(annotation)[1:]) if typing.get_origin(annotation) is Annotated else []
    expect = next((m.text for m in metadata if isinstance(m, Expect)), None)
    if expect and (kind_ in _WHOLE or kind_ in _NUMBER or kind_ in _TYPE):
        return f"must be {expect}, not {given!r}"
    if kind_ in _WHOLE:
        return f"must be a whole number, not {given!r}"
    if kind_ in _NUMBER:
        return f"must be a finite number, not {given!r}"
    if kind_ in _TYPE:
        return f"must be {_TYPE[kind_]}, not {given!r}"
    if kind_ in ("model_type", "model_attributes_type", "dict_type", "mapping_type"):
        fields = _model_keys(annotation)
        return f"expected a mapping with keys {', '.join(fields)}, not {kind(given)}" if fields else f"expected a mapping, not {kind(given)}"
    if kind_ in _BOUNDS:
        words, key = _BOUNDS[kind_]
        bound = ctx[key]
        return f"must be {words} {bound:g}, not {given!r}" if isinstance(bound, float) else f"must be {words} {bound}, not {given!r}"
    if kind_ == "too_short":
        least = ctx.get("min_length", 1)
        return "must be a non-empty list" if least == 1 else f"must have at least {least} items"
    if kind_ == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind_ == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"must be at least {ctx.get('min_length')} characters"
    if kind_ == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters, not {len(given) if isinstance(given, str) else given!r}"
    if kind_ in ("literal_error", "enum"):
        return f"must be {ctx.get('expected')}, not {given!r}"
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


# --- where a key path leads in a model -----------------------------------------------------------


def _walk(model: type[BaseModel], loc: Loc) -> tuple[Any, FieldInfo | None]:
    """Where ``loc`` leads in ``model``: the annotation there, and the field if ``loc`` ends on one.

    The annotation is ``None`` when ``loc`` leaves what the model declares.
    """
    annotation: Any = model
    field: FieldInfo | None = None
    for step in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(step))
            if field is None:
                return None, None
            annotation = field.annotation
            continue
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (list, tuple, set, frozenset, Sequence) and isinstance(step, int) and args:
            annotation, field = args[0], None
        elif origin in (dict, Mapping) and len(args) == 2:
            annotation, field = args[1], None
        else:
            return None, None
    return annotation, field


def _keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    return _model_keys(_walk(model, loc)[0])


def _model_keys(annotation: Any) -> list[str]:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` -> ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
