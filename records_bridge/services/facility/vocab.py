"""The registry's fixed vocabularies: facility types, ownership, operational status, bed types, specialities and
services. Codes are stable machine words (stored and filtered on); the labels are what the map page shows."""

from __future__ import annotations

FACILITY_TYPES: dict[str, str] = {
    "medical_college": "Medical college hospital",
    "district_hospital": "District hospital",
    "sub_district_hospital": "Sub-district hospital",
    "satellite_hospital": "Satellite hospital",
    "chc": "Community health centre (CHC)",
    "phc": "Primary health centre (PHC)",
    "uphc": "Urban primary health centre (UPHC)",
    "private_hospital": "Private hospital",
    "trust_hospital": "Trust or charitable hospital",
    "other": "Other",
}

OWNERSHIP: dict[str, str] = {
    "government": "Government",
    "private": "Private",
    "trust": "Trust or society",
    "ppp": "Public-private partnership",
    "other": "Other",
}

STATUS: dict[str, str] = {
    "operational": "Operational",
    "non_operational": "Not operational",
    "under_construction": "Under construction",
    "temporarily_closed": "Temporarily closed",
}

#: bed types, each with licensed and staffed counts
BED_TYPES: dict[str, str] = {
    "icu": "ICU",
    "ventilator": "Ventilator",
    "hdu": "HDU",
    "oxygen": "Oxygen-supported",
    "general": "General",
}

SPECIALITIES: dict[str, str] = {
    "general_medicine": "General medicine",
    "general_surgery": "General surgery",
    "critical_care": "Critical care",
    "emergency_medicine": "Emergency medicine",
    "anaesthesiology": "Anaesthesiology",
    "cardiology": "Cardiology",
    "neurology": "Neurology",
    "neurosurgery": "Neurosurgery",
    "nephrology": "Nephrology",
    "pulmonology": "Pulmonology",
    "paediatrics": "Paediatrics",
    "neonatology": "Neonatology",
    "obstetrics_gynaecology": "Obstetrics and gynaecology",
    "orthopaedics": "Orthopaedics",
    "gastroenterology": "Gastroenterology",
    "oncology": "Oncology",
    "psychiatry": "Psychiatry",
    "infectious_diseases": "Infectious diseases",
}

SERVICES: dict[str, str] = {
    "icu": "ICU",
    "tele_icu": "Tele-ICU",
    "nicu": "Neonatal ICU",
    "picu": "Paediatric ICU",
    "ventilation": "Mechanical ventilation",
    "dialysis": "Dialysis",
    "blood_bank": "Blood bank",
    "ct": "CT scan",
    "mri": "MRI",
    "cath_lab": "Cath lab",
    "trauma": "Trauma care",
    "stroke": "Stroke thrombolysis",
    "emergency": "24-hour emergency",
    "ambulance": "Ambulance",
    "oxygen_plant": "Oxygen plant",
    "laboratory": "Laboratory",
}
