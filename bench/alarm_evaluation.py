"""Benchmark: the labelled evaluation of artefact-aware alarming, before (numbers alone) and after (with waveform quality).

Replays ``--episodes`` (240) labelled episodes of ``simulators.episodes``
(``evaluation_set``: every artefact and true-event kind, and quiet beds) through
the real alarm engine with the packaged default policy, once without lead
qualities and once with the ECG and pleth analysed every 2 s
(``simulators.alarm_evaluation``). Prints, per episode kind and in total:
sensitivity for true events before/after, false alarms per bed-hour
before/after, the alarm delay artefact-aware alarming added (p50/p95/max), the
longest engine delay after (value beyond the limit -> alarm), and the holds;
which alarm kinds detected the events after, and the longest time from an
asystole's last true beat to its alarm (IEC 60601-2-27: within 10 s).

    .venv/bin/python bench/alarm_evaluation.py [--episodes 240] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from simulators.alarm_evaluation import HIGH_PRIORITY_EVENTS, evaluate_episode, summarise
from simulators.episodes import evaluation_set, generate_episode
from teleicu import config_files


def _f(v: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=240)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures (and each episode's outcome) here")
    a = ap.parse_args()
    policy, tables, hub = config_files.alarm_policy(), config_files.score_tables(), config_files.hub_config()
    staleness = float(min(hub.staleness_s[p] for p in ("hr", "pr", "spo2")))  # the hub holds a value shown this long
    started = time.perf_counter()
    scores = [evaluate_episode(generate_episode(kind, seed), policy, tables, staleness_s=staleness)
              for kind, seed in evaluation_set(a.episodes, a.seed)]
    took = time.perf_counter() - started
    rows = summarise(scores)
    print(f"\n{a.episodes} episodes (seed {a.seed}), {rows['total']['bed_hours']:.2f} bed-hours, default policy; {took:.0f} s\n")
    print("| kind | episodes | true events (alarmable) | sensitivity before | after | alarmable before | after |"
          " false alarms /bed-h before | after | added delay s p50 | p95 | max | engine delay after max s | held | suppressed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    pct = "{:.0%}"
    for kind, r in rows.items():
        events = f"{r['events']} ({r['alarmable_events']})" if r["events"] else "—"
        print(f"| {kind} | {r['episodes']} | {events} | {_f(r['sensitivity_before'], pct)} | {_f(r['sensitivity_after'], pct)} | "
              f"{_f(r['sensitivity_alarmable_before'], pct)} | {_f(r['sensitivity_alarmable_after'], pct)} | "
              f"{_f(r['false_per_bed_hour_before'], '{:.1f}')} | {_f(r['false_per_bed_hour_after'], '{:.1f}')} | "
              f"{_f(r['added_delay_p50_s'])} | {_f(r['added_delay_p95_s'])} | {_f(r['added_delay_max_s'])} | "
              f"{_f(r['engine_delay_after_max_s'], '{:.0f}')} | {r['held']} | {r['suppressed']} |")  # fmt: skip
    t = rows["total"]
    print("\nfalse alarms by alarm kind (before -> after): "
          + ", ".join(f"{k} {v['before']} -> {v['after']}" for k, v in sorted(t["false_by_alarm_kind"].items())))  # fmt: skip
    print(f"true events missed before {t['missed_before']}, after {t['missed_after']}; high-priority events "
          f"({', '.join(HIGH_PRIORITY_EVENTS)}) missed after: {t['high_priority_missed_after']} of {t['high_priority_events']}")  # fmt: skip
    print(f"events detected after, by alarm kind: {t['detected_by_after']}; asystole: longest time from the last true beat to its "
          f"alarm after: {_f(rows.get('asystole', {}).get('from_last_beat_after_max_s'))} s")
    print(f"high-priority events the policy asks to be alarmed (alarmable): {t['high_priority_alarmable']}, "
          f"missed after: {t['high_priority_alarmable_missed_after']}")
    lost = [(s.kind, s.seed) for s in scores for e in s.events if e.detected["before"] and not e.detected["after"]]
    print(f"true events detected before but missed after: {len(lost)} {lost}")
    print(f"true events with some physiological alarm before but none after: {t['any_alarm_lost_after']}")
    missed = [(s.kind, s.seed) for s in scores for e in s.events if e.alarmable and not e.detected["after"]]
    print(f"alarmable true events missed after: {missed}")
    if a.json:
        out = {"episodes": a.episodes, "seed": a.seed, "seconds": round(took, 1), "rows": rows, "lost_after": lost,
               "per_episode": [{"kind": s.kind, "seed": s.seed, "false_alarms": s.false_by_kind, "held": s.held, "suppressed": s.suppressed,
                                "events": [{"kind": e.kind, "alarmable": e.alarmable, "detected": e.detected, "delay_s": e.delay_s,
                                            "engine_delay_s": e.engine_delay_s, "any_alarm": e.any_alarm,
                                            "detected_by": e.detected_by, "from_last_beat_s": e.from_last_beat_s}
                                           for e in s.events]} for s in scores]}  # fmt: skip
        a.json.write_text(json.dumps(out, indent=1))
        print(f"figures written to {a.json}")


if __name__ == "__main__":
    main()
