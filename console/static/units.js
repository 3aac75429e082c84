// teleicu console: parameters as clinicians name and write them, from the hub's vocabulary (GET /api/vocabulary),
// the one table of labels and units (wire/vocabulary.py); loaded once per page.

let byKey = new Map();
let byUcum = new Map();

export async function loadVocabulary() {
  const res = await fetch("/api/vocabulary", { credentials: "same-origin" });
  if (!res.ok) throw new Error(`the hub's vocabulary: ${res.status}`);
  const body = await res.json();
  byKey = new Map(body.parameters.map((p) => [p.key, p]));
  byUcum = new Map();
  for (const p of body.parameters) if (!byUcum.has(p.ucum)) byUcum.set(p.ucum, p.written);
  return body;
}

/** The parameters a nurse may chart, in the vocabulary's order. */
export function chartable() {
  return [...byKey.values()].filter((p) => p.chartable);
}

export function paramLabel(key) {
  return byKey.get(key)?.label || key;
}

export function paramUnit(key) {
  return byKey.get(key)?.written || "";
}

/** A UCUM code (as the API sends it) as written: "Cel" -> "°C"; a category code ({bool}) has none. */
export function displayUnit(ucum) {
  if (byUcum.has(ucum)) return byUcum.get(ucum);
  return ucum && !ucum.startsWith("{") ? ucum : "";
}

/** A parameter's value as written: ACVPU as its letter, air/oxygen as words, numbers with sensible decimals. */
export function formatValue(key, value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  const words = byKey.get(key)?.words;
  if (words && Object.keys(words).length) {
    const word = Object.entries(words).find(([, code]) => code === value);
    if (word) return key === "o2" ? word[0].toLowerCase() : word[0];
  }
  if (key === "temp") return value.toFixed(1);
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}
