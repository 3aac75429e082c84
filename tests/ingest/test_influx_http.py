"""What each InfluxDB write response means to the store: written, retry, poison (with partial-write counts), split."""

from __future__ import annotations

import pytest

from ingest.influx_http import Outcome, classify_write


@pytest.mark.parametrize("status", [200, 204])
def test_success(status: int) -> None:
    assert classify_write(status, "").outcome is Outcome.WRITTEN


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408, 401, 403, 404])
def test_retryable_statuses_never_drop(status: int) -> None:
    assert classify_write(status, '{"error":"x"}').outcome is Outcome.RETRY


def test_field_type_conflict_is_poison_with_the_servers_drop_count() -> None:
    body = '{"error":"partial write: field type conflict: input field \\"value\\" on measurement \\"vitals\\" is type string, already exists as type float dropped=3"}'
    r = classify_write(400, body)
    assert (r.outcome, r.dropped, r.partial) == (Outcome.REJECTED, 3, True)


def test_parse_errors_do_not_trust_the_drop_count() -> None:
    # InfluxDB 1.x reports dropped=0 for lines it could not parse
    r = classify_write(400, '{"error":"partial write: unable to parse \'bad line\': invalid field format dropped=0"}')
    assert r.outcome is Outcome.REJECTED and not r.partial
    r = classify_write(400, '{"error":"unable to parse \'x\': missing fields"}')
    assert r.outcome is Outcome.REJECTED and r.dropped is None and not r.partial


def test_too_large_is_split_not_dropped() -> None:
    assert classify_write(413, "Request Entity Too Large").outcome is Outcome.TOO_LARGE


def test_error_text_is_bounded() -> None:
    assert len(classify_write(400, "x" * 100_000).detail) == 2000
