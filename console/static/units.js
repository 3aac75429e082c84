// teleicu console: parameters and units as clinicians write them (°C, mmHg, /min), one table for every page.

/** UCUM code (what the hub sends) -> what a clinician writes. */
const UNIT_TEXT = {
  Cel: "°C", "mm[Hg]": "mmHg", "/min": "/min", "%": "%", "L/min": "L/min", mV: "mV",
  "{ratio}": "", "{bool}": "", "{ACVPU}": "",
};

export function displayUnit(ucum) {
  return ucum in UNIT_TEXT ? UNIT_TEXT[ucum] : (ucum || "");
}

/** Parameter key -> [label, unit as written]. */
export const PARAMS = {
  hr: ["Heart rate", "/min"], pr: ["Pulse rate", "/min"], spo2: ["SpO₂", "%"], rr: ["Respiration rate", "/min"],
  nibp_sys: ["Systolic BP", "mmHg"], nibp_dia: ["Diastolic BP", "mmHg"], nibp_mean: ["Mean BP", "mmHg"],
  abp_sys: ["Arterial systolic", "mmHg"], abp_dia: ["Arterial diastolic", "mmHg"], abp_mean: ["Arterial mean", "mmHg"],
  temp: ["Temperature", "°C"], etco2: ["EtCO₂", "mmHg"], o2: ["Air or oxygen", ""], acvpu: ["Consciousness", ""],
  fio2: ["FiO₂", "%"], o2_flow: ["O₂ flow", "L/min"],
};

export function paramLabel(key) {
  return (PARAMS[key] || [key])[0];
}

export function paramUnit(key) {
  return (PARAMS[key] || [key, ""])[1];
}

/** A parameter's value as written: ACVPU as its letter, air/oxygen as words, numbers with sensible decimals. */
export function formatValue(key, value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (key === "acvpu") return ["A", "C", "V", "P", "U"][value] ?? String(value);
  if (key === "o2") return value ? "oxygen" : "air";
  if (key === "temp") return value.toFixed(1);
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}
