"""What the KPI engine lets a programme configure: the time zone of its days, the NEWS2 response times, the expected
sample rate, which parameters count for completeness, which technical alarms are monitor gaps, and the ingest limits.

NEWS2 response times: ``shared/clinical/scores.md`` (RCP NEWS2, Charts 3 and 4)
asks for an *urgent* response at a total of 5-6 (band medium) and an
*emergency* response at 7 or more (band high); it names no minutes. The
defaults here, 60 minutes and 30 minutes, are the programme's choice to
measure against (the urgent band's "at least hourly" observation interval, and
half of it for an emergency); set them to the state's escalation policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from alerts.kinds import BY_KEY, NEWS2, TECHNICAL, technical_kind


def _gap_kinds() -> tuple[str, ...]:
    return (technical_kind("no_data"), technical_kind("device_disconnected"), technical_kind("agent_offline"))


@dataclass(frozen=True, slots=True)
class KpiSettings:
    tz: str = "Asia/Kolkata"  # days, and the window's edges, are midnights here
    news2_urgent_min: int = 60  # NEWS2 >= 5 (band medium or high): acknowledged within this
    news2_emergency_min: int = 30  # NEWS2 >= 7 (band high): acknowledged within this
    news2_alarm_kinds: tuple[str, ...] = (NEWS2,)  # the alarms whose acknowledgement is the clinician's response
    expected_per_hour: int = 3600  # samples per parameter per monitored bed-hour (a monitor's numerics at 1 Hz)
    core_params: tuple[str, ...] = ("hr", "spo2", "rr")  # the parameters data completeness counts
    gap_kinds: tuple[str, ...] = field(default_factory=_gap_kinds)  # technical alarms that mean the bed's data stopped
    max_batch: int = 1000  # events per POST
    max_body: int = 16 * 1024 * 1024  # bytes per POST
    max_days: int = 366  # the longest window a query may ask for

    def __post_init__(self) -> None:
        ZoneInfo(self.tz)  # an unknown zone fails here, at start, not on the first query
        if self.news2_urgent_min <= 0 or self.news2_emergency_min <= 0 or self.expected_per_hour <= 0:
            raise ValueError("NEWS2 response times and the expected sample rate must be positive")
        if not self.core_params:
            raise ValueError("data completeness needs at least one parameter")
        for k in (*self.gap_kinds, *self.news2_alarm_kinds):
            if k not in BY_KEY:
                raise ValueError(f"unknown alarm kind {k!r} (alerts/kinds.py)")
        for k in self.gap_kinds:
            if BY_KEY[k].category != TECHNICAL:
                raise ValueError(f"{k!r} is not a technical alarm")
