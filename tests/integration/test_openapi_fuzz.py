"""schemathesis against the hub's own OpenAPI document, signed in as each role.

For every role the hub is fuzzed through every operation of ``/openapi.json``
(generated examples, the schema's edge cases, and random inputs), with that
role's bearer token, on a hub holding a ward A and B patient with an open
alarm each; path parameters name ward A's bed and alarm, so the requests reach
past "no such bed" into each route's own checks. The run must find no 5xx, no status code the document does not
declare for the operation, and no response body outside its declared schema.
Signing out is left out (it would end the session the run uses), and so is
signing in, whose refusals are tested, with their rate limit, in test_sign_in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import USERS, HubProcess, feed_news2_alarm, get_json, token, wait_until

pytestmark = pytest.mark.integration

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
EXAMPLES = 12  # per operation and phase; a fixed seed keeps CI's run the same run


@pytest.mark.parametrize("user", sorted(USERS))
def test_no_operation_fails_or_answers_outside_its_schema(hub: HubProcess, user: str, tmp_path: Path) -> None:
    feed_news2_alarm(hub, "A", "A-01")
    feed_news2_alarm(hub, "B", "B-01")
    alarms = wait_until(lambda: [a["id"] for a in get_json(f"{hub.base}/api/alerts")["alerts"] if a["bed"] == "A-01"], "an alarm", 30)
    config = tmp_path / "schemathesis.toml"  # real identifiers, so the run reaches past "no such bed" into each route
    config.write_text(f'[parameters]\nbed = "A-01"\nalert_id = "{alarms[0]}"\nwait_s = 0\n')  # no long polls
    cmd = [
        Path(sys.executable).with_name("schemathesis").as_posix(), "--config-file", str(config), "run", f"{hub.base}/openapi.json",
        "--header", f"Authorization: Bearer {token(hub.base, user)}",
        "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "20261129", "--workers", "1",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "10",
        "--exclude-path", "/api/auth/logout", "--exclude-path", "/api/auth/login",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache stays out of the checkout
    assert run.returncode == 0, f"schemathesis as {user}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    assert "No issues found" in run.stdout or " passed" in run.stdout, run.stdout[-2000:]
    hub_log = hub.log.read_text()
    assert "Traceback" not in hub_log, hub_log[-3000:]
