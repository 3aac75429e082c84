"""Roles, what each may do, and ward scope: the authorisation policy as one table.

=================  ==================================================================================
role               may
=================  ==================================================================================
``admin``          administer users and agents, list unmapped device codes, read the audit log, see
                   KPIs and counters; never patient data (least privilege: IT is not the care team)
``intensivist``    see every ward's patients (bed video too); act on alarms; change limits and clinical
                   settings; talk at the bedside through the bed camera (talk-back)
``teleicu_nurse``  see every ward's patients (bed video too); act on alarms; talk-back
``ward_nurse``     see and act on alarms of her own wards only (one or more)
``viewer``         KPIs, counters and the wards' bed counts only, never patient data
``records``        the records bridge's account: reads the outbox (which carries patient data) and the
                   wards' bed counts (for the facility registry), nothing else; no person signs in with it
=================  ==================================================================================

Admitting, transferring and discharging patients, and charting, are for the
intensivist and both nurses (a ward nurse in her wards).

Every route names the one permission it needs (``ingest.auth.guards``); a role
that lacks it gets 403, and a ward nurse asking for another ward's bed or alarm
gets 403 too (for a bed she may not see at all, the same 404 an unknown bed gets,
so bed ids are not probed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    INTENSIVIST = "intensivist"
    TELEICU_NURSE = "teleicu_nurse"
    WARD_NURSE = "ward_nurse"
    VIEWER = "viewer"
    RECORDS = "records"


class Permission(StrEnum):
    VIEW_PATIENTS = "view_patients"  # census, vitals, scores, trends, gaps, alarms and their history, the live feed
    ACT_ON_ALARMS = "act_on_alarms"  # acknowledge, silence
    CLINICAL_SETTINGS = "clinical_settings"  # per-bed limits, NEWS2 SpO2 scale
    VIEW_KPI = "view_kpi"  # counters, metrics, alarm statistics: no patient data
    ADMIN_AGENTS = "admin_agents"  # edge agents, unmapped device codes
    ADMIN_USERS = "admin_users"
    READ_AUDIT = "read_audit"
    ADMIT_PATIENTS = "admit_patients"  # admit, transfer, discharge, cancel, correct demographics
    CHART = "chart"  # chart observations monitors do not send
    READ_EVENTS = "read_events"  # the outbox, for the records bridge
    READ_CENSUS = "read_census"  # each ward's bed counts (occupied, free, NEWS2 >= 7, monitors silent): no patient data
    TALK_BACK = "talk_back"  # speak at the bedside through the bed camera's talk-back (remote clinicians)


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({Permission.ADMIN_AGENTS, Permission.ADMIN_USERS, Permission.READ_AUDIT, Permission.VIEW_KPI,
                              Permission.READ_CENSUS}),
    Role.INTENSIVIST: frozenset({Permission.VIEW_PATIENTS, Permission.ACT_ON_ALARMS, Permission.CLINICAL_SETTINGS, Permission.VIEW_KPI,
                                 Permission.ADMIT_PATIENTS, Permission.CHART, Permission.TALK_BACK, Permission.READ_CENSUS}),
    Role.TELEICU_NURSE: frozenset({Permission.VIEW_PATIENTS, Permission.ACT_ON_ALARMS, Permission.VIEW_KPI, Permission.ADMIT_PATIENTS,
                                   Permission.CHART, Permission.TALK_BACK, Permission.READ_CENSUS}),
    Role.WARD_NURSE: frozenset({Permission.VIEW_PATIENTS, Permission.ACT_ON_ALARMS, Permission.ADMIT_PATIENTS, Permission.CHART,
                                Permission.READ_CENSUS}),
    Role.VIEWER: frozenset({Permission.VIEW_KPI, Permission.READ_CENSUS}),
    Role.RECORDS: frozenset({Permission.READ_EVENTS, Permission.READ_CENSUS}),
}

WARD_SCOPED: frozenset[Role] = frozenset({Role.WARD_NURSE})  # these roles see only the wards they are given


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a signed-in user (from the session, never from a request body)."""

    username: str
    display_name: str
    role: Role
    wards: tuple[str, ...] = ()  # for a ward-scoped role: the wards she may see; empty otherwise
    session: str = ""  # the session id (hash) the request came with, for sign-out

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    @property
    def all_wards(self) -> bool:
        return self.role not in WARD_SCOPED

    def sees_ward(self, ward: str) -> bool:
        return self.all_wards or ward in self.wards

    def to_json(self) -> dict[str, object]:
        return {"username": self.username, "display_name": self.display_name, "role": self.role.value,
                "wards": list(self.wards), "all_wards": self.all_wards,
                "permissions": sorted(p.value for p in GRANTS[self.role])}  # fmt: skip
