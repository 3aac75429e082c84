"""The alarm-kind table covers every kind the rules and the policy name, and refuses a name it does not hold."""

import pytest
from config_support import alarm_policy

from alerts.kinds import BY_KEY, FAMILIES, KINDS, TECHNICAL, kind, limit_kind, technical_kind
from wire.vocabulary import PARAMETERS


def test_every_kind_is_once_in_the_table_with_a_clinician_label() -> None:
    assert len(BY_KEY) == len(KINDS)
    for k in KINDS:
        assert k.key.split(":", 1)[0] == k.family and k.label and ":" not in k.label and "_" not in k.label
        assert (k.category == TECHNICAL) == (k.family == "technical")


def test_the_policy_names_only_kinds_and_families_of_the_table() -> None:
    policy = alarm_policy()
    for ward in (policy.defaults, *policy.wards.values()):
        for what in ward.technical_priority:
            technical_kind(what)
        for param in ward.limits:
            limit_kind(param, "low"), limit_kind(param, "high")
        assert set(ward.clear_delay_s) <= FAMILIES and set(ward.latching) <= FAMILIES
    assert {p.key for p in PARAMETERS} == {k.key.split(":")[1].rsplit("_", 1)[0] for k in KINDS if k.family == "limit"}


def test_an_unknown_kind_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        kind("technical:no_such_thing")
    with pytest.raises(KeyError):
        limit_kind("hr", "sideways")
