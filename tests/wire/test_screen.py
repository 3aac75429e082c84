"""Per-observation plausibility screening."""

from wire.messages import Observation
from wire.screen import screen
from wire.vocabulary import Flag


def obs(param: str, value: float | None, flags: int = 0) -> Observation:
    return Observation("A-01", param, value, 1, 1, "m", flags)


def test_plausible_values_pass_at_the_range_edges() -> None:
    assert screen(obs("spo2", 0)) is None
    assert screen(obs("spo2", 100)) is None
    assert screen(obs("temp", 15)) is None
    assert screen(obs("acvpu", 4)) is None


def test_out_of_range_is_named() -> None:
    reason = screen(obs("spo2", 100.5))
    assert reason is not None and "spo2" in reason and "plausible range" in reason
    assert screen(obs("hr", -1)) is not None
    assert screen(obs("temp", 46.1)) is not None


def test_unknown_parameter_and_flags() -> None:
    assert "unknown parameter" in (screen(obs("heart", 80)) or "")
    assert "unknown flag" in (screen(obs("hr", 80, 0x40)) or "")


def test_missing_value_needs_a_reason() -> None:
    assert screen(obs("spo2", None)) is not None
    assert screen(obs("spo2", None, Flag.PROBE_OFF)) is None


def test_categorical_must_be_whole() -> None:
    assert screen(obs("acvpu", 1.5)) is not None
    assert screen(obs("o2", 1)) is None


def test_a_rate_the_hub_derives_from_waveforms_is_refused_from_a_device() -> None:
    for param in ("hr_ecg", "pr_pleth"):
        assert "computed by the hub" in (screen(obs(param, 80)) or "")
