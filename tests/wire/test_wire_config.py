"""wire.config: one error class, strict models, and messages naming source, key path and problem."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field, model_validator

from wire.config import ConfigError, ConfigModel, Expect, Problem, format_path, load, read_yaml, validate


class Line(ConfigModel):
    port: Annotated[str, Expect("a device path")]
    baud: Annotated[int, Field(ge=50)] = 9600
    rtscts: bool = False


class Gateway(ConfigModel):
    name: str
    ratio: float = 1.0
    lines: Annotated[list[Line], Field(min_length=1)]
    beds: dict[str, int] = {}

    @model_validator(mode="after")
    def _one_port_per_line(self) -> Gateway:
        ports = [line.port for line in self.lines]
        for i, port in enumerate(ports):
            if port in ports[:i]:
                raise Problem(f"port {port!r} used twice", ("lines", i, "port"))
        return self


class LocalError(ConfigError):
    pass


def message(raw: object) -> str:
    with pytest.raises(ConfigError) as caught:
        validate(Gateway, raw, "gw.yaml")
    return str(caught.value)


GOOD = {"name": "gw", "lines": [{"port": "/dev/ttyUSB0"}]}


def test_a_valid_file() -> None:
    gw = validate(Gateway, GOOD | {"ratio": 2, "beds": {"a": 1}}, "gw.yaml")
    assert gw.lines[0].baud == 9600 and gw.ratio == 2.0 and gw.beds == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "gw.yaml: expected a mapping with keys name, ratio, lines, beds, not nothing"),
        ([1, 2], "gw.yaml: expected a mapping with keys name, ratio, lines, beds, not list [1, 2]"),
        (GOOD | {"nmae": "x"}, "gw.yaml: unknown keys ['nmae']; expected name, ratio, lines, beds"),
        ({"lines": [{"port": "p"}]}, "gw.yaml: missing name"),
        (GOOD | {"lines": []}, "gw.yaml: lines: must be a non-empty list"),
        (GOOD | {"lines": [{"port": "p", "baud": "9600"}]}, "gw.yaml: lines[0].baud: must be a whole number, not '9600'"),
        (GOOD | {"lines": [{"port": "p", "baud": True}]}, "gw.yaml: lines[0].baud: must be a whole number, not True"),
        (GOOD | {"lines": [{"port": "p", "baud": 9.6}]}, "gw.yaml: lines[0].baud: must be a whole number, not 9.6"),
        (GOOD | {"lines": [{"port": "p", "baud": 10}]}, "gw.yaml: lines[0].baud: must be at least 50, not 10"),
        (GOOD | {"lines": [{"port": None}]}, "gw.yaml: lines[0].port: must be a device path, not None"),
        (GOOD | {"lines": [{"port": "p", "rtscts": "yes"}]}, "gw.yaml: lines[0].rtscts: must be true or false, not 'yes'"),
        (GOOD | {"lines": [{"port": "p", "rts": 1}]}, "gw.yaml: lines[0]: unknown keys ['rts']; expected port, baud, rtscts"),
        (GOOD | {"lines": ["p"]}, "gw.yaml: lines[0]: expected a mapping with keys port, baud, rtscts, not str 'p'"),
        (GOOD | {"ratio": "1"}, "gw.yaml: ratio: must be a finite number, not '1'"),
        (GOOD | {"ratio": float("nan")}, "gw.yaml: ratio: must be a finite number, not nan"),
        (GOOD | {"beds": {"a": "1"}}, "gw.yaml: beds.a: must be a whole number, not '1'"),
        (GOOD | {"lines": [{"port": "p"}, {"port": "p"}]}, "gw.yaml: lines[1].port: port 'p' used twice"),
    ],
)
def test_each_problem_names_file_key_and_problem(raw: object, expected: str) -> None:
    assert message(raw) == expected


def test_every_problem_is_reported_one_per_line_unknown_keys_first() -> None:
    text = message({"nmae": "x", "lines": [{"port": "p", "baud": "fast"}], "extra": 1})
    assert text.splitlines() == [
        "gw.yaml: unknown keys ['nmae', 'extra']; expected name, ratio, lines, beds",
        "gw.yaml: missing name",
        "gw.yaml: lines[0].baud: must be a whole number, not 'fast'",
    ]


def test_the_error_carries_source_and_problems_and_can_be_a_subclass() -> None:
    with pytest.raises(LocalError) as caught:
        validate(Gateway, GOOD | {"ratio": "x"}, "gw.yaml", LocalError)
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, ValueError)
    assert caught.value.source == "gw.yaml" and caught.value.problems == (("ratio", "must be a finite number, not 'x'"),)


def test_every_config_error_class_is_one_family() -> None:
    from alerts.policy import PolicyError
    from alerts.score_tables import ScoreConfigError
    from edge_agent.config import EdgeConfigError
    from ingest.hub_config import HubConfigError
    from ingest.influx_config import InfluxConfigError
    from ingest.stores import StoreUrlError

    for cls in (PolicyError, ScoreConfigError, EdgeConfigError, HubConfigError, InfluxConfigError, StoreUrlError):
        assert issubclass(cls, ConfigError), cls


def test_format_path() -> None:
    assert format_path(("devices", 2, "baud")) == "devices[2].baud"
    assert format_path(()) == ""
    assert format_path(("after_s", "urgent", "[key]")) == "after_s.urgent"


def test_load_reads_yaml_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text("name: gw\nlines:\n  - {port: /dev/ttyS0, baud: fast}\n")
    with pytest.raises(ConfigError, match=r"^" + str(path) + r": lines\[0\]\.baud: must be a whole number, not 'fast'$"):
        load(Gateway, path, "gateway config")


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("name: a\nname: b\n")
    with pytest.raises(ConfigError, match="not valid YAML: while reading a mapping: found key 'name' twice at line 2, column 1$"):
        read_yaml(path, "gateway config")


def test_unreadable_oversized_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^" + str(tmp_path / "none.yaml") + ": cannot read gateway config: "):
        read_yaml(tmp_path / "none.yaml", "gateway config")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than 1048576 bytes; not a gateway config file"):
        read_yaml(big, "gateway config")
    broken = tmp_path / "broken.yaml"
    broken.write_text("lines: [\n")
    with pytest.raises(ConfigError, match="not valid YAML: .* at line 2"):
        read_yaml(broken, "gateway config")
