"""Fault injection with real processes, counting every sample.

Simulated monitors -> pty -> ``teleicu edge --record`` -> ``teleicu hub``. The
edge agent records every observation and waveform chunk once it is in its
spool; after each fault (and in a run without one), every recorded sample must
be in the hub's store exactly once (same bed, parameter, device time and
value), every recorded ECG chunk too (same samples, by digest), and the right
technical alarms must come and go.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from config_support import default_text
from support import get_json, post_json, sign_in, start_hub, wait_alarm, wait_alarm_cleared, wait_audit_resolved, wait_until
from ward_support import BEDS, Ward

pytestmark = pytest.mark.integration


def count_recorded_lines(ward: Ward) -> int:
    return len(ward.record.read_text().splitlines()) if ward.record.exists() else 0


def test_without_a_fault_every_sample_and_waveform_chunk_is_stored_exactly_once(tmp_path: Path) -> None:
    """Status reports (and their floor) flow every 0.1 s beside live numerics and ECG: nothing may slip under the floor."""
    hub = start_hub(tmp_path)
    ward = Ward(tmp_path, hub)
    try:
        wait_until(lambda: len(ward.recorded_waves()) > 300, "300 ECG chunks recorded", timeout=90, interval=0.5)
        ward.all_stored_exactly_once()
        stats = get_json(f"{hub.base}/api/stats")
        assert stats["counters"]["agent_status_reports"] > 100, stats["counters"]
    finally:
        ward.cleanup()
        hub.stop()


def test_hub_killed_for_30_s_loses_nothing(tmp_path: Path) -> None:
    hub = start_hub(tmp_path)
    ward = Ward(tmp_path, hub)
    try:
        wait_until(lambda: len(ward.stored()) > 200, "data to flow")
        hub.proc.send_signal(signal.SIGKILL)
        hub.proc.wait(10)
        before = count_recorded_lines(ward)
        # the outage lasts while the monitors produce 30 s of data (about 9 observations/s per bed)
        t_down = time.monotonic()
        wait_until(lambda: count_recorded_lines(ward) >= before + 30 * BEDS * 8 and time.monotonic() - t_down >= 30,
                   "30 s of data spooled at the edge during the outage", timeout=90, interval=0.5)  # fmt: skip
        ward.hub = start_hub(tmp_path, port=hub.port, db=hub.db)
        ward.all_stored_exactly_once()
        stats = get_json(f"{ward.hub.base}/api/stats")
        assert stats["counters"]["frames_ingested"] > 0
        edge_stats = json.loads((tmp_path / "edge.stats.json").read_text())
        assert edge_stats["spool"]["dropped_frames"] == 0 and edge_stats["spool"]["frames"] == 0
        assert edge_stats["uplink"]["frames_sent_backlog"] > 0  # the outage went out as backlog, behind live data
    finally:
        ward.cleanup()
        ward.hub.stop()


def test_edge_killed_and_restarted_loses_nothing_it_had_spooled(tmp_path: Path) -> None:
    hub = start_hub(tmp_path)
    ward = Ward(tmp_path, hub)
    try:
        wait_until(lambda: len(ward.stored()) > 200, "data to flow")
        ward.edge.send_signal(signal.SIGKILL)
        ward.edge.wait(10)
        alarm = wait_alarm(hub.base, "technical:agent_offline", "the agent-offline technical alarm")
        assert alarm[0]["subject"] == "agent:edge-A" and alarm[0]["category"] == "technical"
        ward.edge = ward.start_edge()  # same spool file: same epoch, the sequence continues
        wait_alarm_cleared(hub.base, "technical:agent_offline", "the agent-offline alarm to clear")
        history = wait_audit_resolved(hub.base, alarm[0]["id"])
        assert history[0]["event"] == "raised"
        ward.all_stored_exactly_once()
    finally:
        ward.cleanup()
        hub.stop()


AS_ROOT = [] if os.geteuid() == 0 else ["sudo", "-n"]  # mounting needs root (CI runs as root)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 32 MiB file system (tmpfs) the test can fill up: a full disk refuses even root."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run([*AS_ROOT, "mount", "-t", "tmpfs", "-o", f"size=32m,uid={os.geteuid()}", "teleicu-test", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run([*AS_ROOT, "umount", "--lazy", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file (as a runaway log would); returns it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


def test_store_disk_full_holds_data_at_the_edge_and_loses_nothing(tmp_path: Path, small_disk: Path) -> None:
    hub = start_hub(tmp_path, db=small_disk / "store.sqlite3")
    ward = Ward(tmp_path, hub)
    try:
        wait_until(lambda: len(ward.stored()) > 200, "data to flow")
        filler = fill(small_disk)
        alarm = wait_alarm(hub.base, "technical:store_unreachable", "the store-unreachable technical alarm", timeout=90)
        assert alarm[0]["category"] == "technical" and "full" in alarm[0]["detail"], alarm[0]
        # live vitals keep reaching the consoles while nothing can be stored
        seen = {b["bed"]: b["last_rx"] for b in get_json(f"{hub.base}/api/beds")["beds"]}
        wait_until(lambda: all(b["last_rx"] > seen[b["bed"]] + 5000 for b in get_json(f"{hub.base}/api/beds")["beds"]),
                   "live data for every bed during the fault", timeout=30, interval=0.5)  # fmt: skip
        assert hub.proc.poll() is None, "the hub must survive a full disk"
        # the nurse arriving for her shift signs in, renews and signs out while the store can record none of it
        status, body = sign_in(hub.base, "nurse-a")
        assert status == 200, body
        nurse = {"Authorization": f"Bearer {body['access_token']}"}
        assert len(get_json(f"{hub.base}/api/beds", as_=None, headers=nurse)["beds"]) == BEDS
        status, renewed = post_json(f"{hub.base}/api/auth/refresh", {"refresh_token": body["refresh_token"]}, as_=None)
        assert status == 200, renewed
        assert post_json(f"{hub.base}/api/auth/refresh", {"refresh_token": body["refresh_token"]}, as_=None)[0] == 401  # spent
        filler.unlink()
        wait_alarm_cleared(hub.base, "technical:store_unreachable", "the store-unreachable alarm to clear")
        history = wait_audit_resolved(hub.base, alarm[0]["id"])  # written once the disk had room
        assert history[0]["event"] == "raised"
        ward.all_stored_exactly_once()
        edge_stats = json.loads((tmp_path / "edge.stats.json").read_text())
        assert edge_stats["spool"]["dropped_frames"] == 0
        # the connection held rather than cycling: told once, asked to re-send once
        assert edge_stats["uplink"].get("hub_error_store_unavailable", 0) >= 1, edge_stats
        assert edge_stats["uplink"]["connects"] <= 4, edge_stats
        stats = get_json(f"{hub.base}/api/stats")["counters"]
        assert stats["store_holds"] >= 1 and stats["frames_held_unstored"] > 0, stats
        assert stats.get("audit_write_retries", 0) > 0  # the raise itself was written late, not lost
        assert stats["auth_writes_deferred"] >= 2  # the sign-in and the renewal, held in memory, then written in order
        with sqlite3.connect(hub.db) as db:
            rows = db.execute("SELECT id, revoked, successor FROM sessions WHERE username = 'nurse-a'").fetchall()
        by_id = {sid: (revoked, successor) for sid, revoked, successor in rows}
        [live] = [sid for sid, (revoked, _s) in by_id.items() if not revoked]
        [first] = [sid for sid in by_id if sid != live]
        assert by_id[first] == (1, live) and by_id[live] == (0, None), rows  # the first session was traded for the second

        def audited() -> list[str]:
            with sqlite3.connect(hub.db) as db:
                return [a for (a,) in db.execute("SELECT action FROM audit_log WHERE actor = 'nurse-a' ORDER BY seq")]
        assert wait_until(audited, "the sign-in in the audit log") == ["auth.sign_in"]
    finally:
        ward.cleanup()
        hub.stop()


def test_hub_refuses_to_start_on_an_unwritable_store(tmp_path: Path) -> None:
    """A read-only file system (root cannot write it either): one clear line, exit status 2, no traceback."""
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run([*AS_ROOT, "mount", "-t", "tmpfs", "-o", "size=1m,ro", "teleicu-test", str(ro)], check=True)
    try:
        proc = subprocess.run([sys.executable, "-m", "teleicu", "hub", "--port", "0", "--db", str(ro / "store.sqlite3")],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        subprocess.run([*AS_ROOT, "umount", str(ro)], check=True)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot open the embedded store {ro / 'store.sqlite3'}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_hub_restart_remembers_agents_and_alarms_for_one_that_never_returns(tmp_path: Path) -> None:
    """A gateway that dies while the hub is down is not forgotten: the restarted hub expects it and raises agent_offline."""
    alarms = tmp_path / "alarms.yaml"
    alarms.write_text(re.sub(r"agent_offline_s: *\d+", "agent_offline_s: 2", default_text("alarms.yaml")))
    hub = start_hub(tmp_path, extra=("--alarms", str(alarms)))
    ward = Ward(tmp_path, hub)
    try:
        wait_until(lambda: len(ward.stored()) > 50, "data to flow")
        assert [a["agent"] for a in get_json(f"{hub.base}/api/agents", as_="admin")["agents"]] == ["edge-A"]
        # the hub goes down for an upgrade: SIGTERM, a graceful stop within 10 s (uvicorn then re-raises the
        # signal, so the exit status is -SIGTERM, which service managers count as a clean stop)...
        assert ward.stop(hub.proc) in (0, -signal.SIGTERM), hub.log.read_text()[-2000:]
        assert ward.stop(ward.edge) == 0  # ...and the gateway dies meanwhile
        t_restart = time.monotonic()
        hub = ward.hub = start_hub(tmp_path, port=hub.port, db=hub.db, extra=("--alarms", str(alarms)))
        [agent] = get_json(f"{hub.base}/api/agents", as_="admin")["agents"]
        assert agent["agent"] == "edge-A" and not agent["online"] and agent["offline_since"] is not None
        assert len(agent["beds"]) == BEDS
        beds = {b["bed"] for b in get_json(f"{hub.base}/api/beds")["beds"]}
        assert set(agent["beds"]) <= beds  # its beds are on the census, shown offline
        alarm = wait_alarm(hub.base, "technical:agent_offline", "the agent-offline alarm for the agent that never came back")
        assert time.monotonic() - t_restart >= 15  # not before the restart grace: a hub restart alone raises nothing
        assert alarm[0]["subject"] == "agent:edge-A" and alarm[0]["ward"] == "A"
        # hospital IT takes the gateway out of service: the alarm clears and a restart no longer expects it
        status, body = post_json(f"{hub.base}/api/agents/edge-A", None, method="DELETE", as_="admin")
        assert status == 200, body
        wait_alarm_cleared(hub.base, "technical:agent_offline", "the agent-offline alarm to clear once the agent is forgotten")
        hub.stop()
        hub = ward.hub = start_hub(tmp_path, port=hub.port, db=hub.db, extra=("--alarms", str(alarms)))
        assert get_json(f"{hub.base}/api/agents", as_="admin")["agents"] == []
    finally:
        ward.cleanup()
        ward.hub.stop()


def hold_write_lock(db: Path, stop: threading.Event, held_s: float = 2.0, gap_s: float = 0.3) -> threading.Thread:
    """Another process's writer (here a thread with its own connection) taking the store's write lock for ``held_s``
    at a time: the hub's writes wait for it (under SQLite's 5 s busy timeout, so slow, never failing)."""

    def run() -> None:
        conn = sqlite3.connect(db, timeout=30, isolation_level=None)
        try:
            while not stop.is_set():
                conn.execute("BEGIN IMMEDIATE")
                stop.wait(held_s)
                conn.execute("COMMIT")
                stop.wait(gap_s)
        finally:
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_store_slower_than_the_stall_limit_holds_the_connection_and_loses_nothing(tmp_path: Path) -> None:
    """With the store's writer kept waiting 2 s at a time, an edge reader that waited ``store_stall_s`` for it holds
    (reads on, frames shown live and kept in the spool) instead of leaving the socket unread, which either end's
    20 s keepalive would cut; once the store catches up the agent re-sends, and every sample is stored exactly once."""
    cfg = tmp_path / "hub.yaml"
    text = re.sub(r"max_inflight_frames: *\d+", "max_inflight_frames: 4", default_text("hub.yaml"))
    cfg.write_text(re.sub(r"store_stall_s: *[\d.]+", "store_stall_s: 0.5", text))
    hub = start_hub(tmp_path, extra=("--config", str(cfg)))
    ward = Ward(tmp_path, hub)
    stop = threading.Event()
    try:
        wait_until(lambda: len(ward.stored()) > 200, "data to flow")
        locker = hold_write_lock(hub.db, stop)
        wait_until(lambda: get_json(f"{hub.base}/api/stats")["counters"].get("store_stalls", 0) >= 2, "two stalls", timeout=60)
        seen = {b["bed"]: b["last_rx"] for b in get_json(f"{hub.base}/api/beds")["beds"]}
        wait_until(lambda: all(b["last_rx"] > seen[b["bed"]] + 3000 for b in get_json(f"{hub.base}/api/beds")["beds"]),
                   "live data for every bed while the store is slow", timeout=30, interval=0.5)  # fmt: skip
        stop.set()
        locker.join(10)
        ward.all_stored_exactly_once()
        stats = get_json(f"{hub.base}/api/stats")["counters"]
        assert stats["store_holds"] >= 1 and stats["frames_held_unstored"] > 0, stats
        edge_stats = json.loads((tmp_path / "edge.stats.json").read_text())
        assert edge_stats["spool"]["dropped_frames"] == 0, edge_stats
        lost = [line for line in (tmp_path / "edge.log").read_text().splitlines() if "uplink to" in line and " lost: " in line]
        assert lost and all("1013" in line for line in lost), lost  # asked to re-send after each hold; never a keepalive cut
    finally:
        stop.set()
        ward.cleanup()
        hub.stop()
