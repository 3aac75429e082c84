"""Which patient is in which bed now: the hub's in-memory view of the open encounters."""

from __future__ import annotations

from dataclasses import dataclass, field

from wire.outbox_events import Encounter, Patient


@dataclass
class Census:
    """Which patient is in which bed now: the open encounters, loaded at start and kept current after each commit."""

    by_bed: dict[str, tuple[Encounter, Patient]] = field(default_factory=dict)

    def of_bed(self, bed: str) -> tuple[Encounter, Patient] | None:
        return self.by_bed.get(bed)

    def set(self, e: Encounter, p: Patient) -> None:
        for bed in [b for b, (enc, _p) in self.by_bed.items() if enc.encounter_id == e.encounter_id]:
            del self.by_bed[bed]  # a transfer leaves the old bed
        self.by_bed[e.bed] = (e, p)

    def drop(self, encounter_id: str) -> None:
        for bed in [b for b, (enc, _p) in self.by_bed.items() if enc.encounter_id == encounter_id]:
            del self.by_bed[bed]

    def update_patient(self, p: Patient) -> None:
        for bed, (enc, old) in list(self.by_bed.items()):
            if old.patient_id == p.patient_id:
                self.by_bed[bed] = (enc, p)
