// teleicu console: the command centre's KPI page (/kpi). Every figure is read from GET /api/kpi and shown as the API
// gives it (rounded for display only); each figure's element carries the API's value in data-value for audit.

import uPlot from "./vendor/uplot/uPlot.esm.js";
import { api, startSession } from "./session.js";

const BAND_TEXT = { high: "High", medium: "Medium", "low-medium": "Low-medium", low: "Low", unknown: "Unknown (incomplete)" };
const BAND_COLOUR = { high: "#ff6b6b", medium: "#ffa94d", "low-medium": "#ffe066", low: "#69db7c", unknown: "#adb5bd" };
const KIND_TEXT = { news2: "NEWS2", mews: "MEWS", qsofa: "qSOFA", limit: "Limit alarms", trend: "Trend alarms" };
const $ = (id) => document.getElementById(id);

/** An alarm kind (or family) as a clinician would name it: "technical:probe_off" -> "Technical: probe off". */
function kindText(kind) {
  if (KIND_TEXT[kind]) return KIND_TEXT[kind];
  const [family, rest] = kind.split(":", 2);
  return rest ? `${family[0].toUpperCase()}${family.slice(1)}: ${rest.replaceAll("_", " ")}` : kind;
}

function el(tag, text, value) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (value !== undefined) e.dataset.value = String(value);
  return e;
}

function row(th, ...cells) {
  const tr = el("tr");
  const h = el("th", th);
  h.scope = "row";
  tr.append(h, ...cells);
  return tr;
}

function pct(x) { return x === null ? "—" : `${(x * 100).toFixed(1)} %`; }

function duration(s) {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function render(k) {
  $("as-of").textContent = `As of ${new Date(k.now).toLocaleString()}`;
  $("ward-rows").replaceChildren(...k.wards.map((w) => {
    const tr = el("tr");
    tr.dataset.ward = w.ward;
    const name = el("th", `Ward ${w.ward}`);
    name.scope = "row";
    tr.append(name, el("td", String(w.beds), w.beds), el("td", String(w.gateway_connected), w.gateway_connected),
      el("td", String(w.receiving_data), w.receiving_data), el("td", duration(w.gap_s), w.gap_s),
      el("td", pct(w.completeness), w.completeness));
    return tr;
  }));
  const a = k.alarms;
  $("alarm-total").replaceChildren(el("span", `${a.alarms_per_bed_per_day}`, a.alarms_per_bed_per_day),
    document.createTextNode(` alarms per bed per day (${a.alarms} alarms, ${a.beds} beds)`));
  $("alarm-kinds").replaceChildren(...Object.entries(a.by_kind_per_bed_per_day).map(([kind, v]) => row(kindText(kind), el("td", String(v), v))));
  $("alarm-priorities").replaceChildren(...Object.entries(a.by_priority_per_bed_per_day).map(([p, v]) => row(`${p[0].toUpperCase()}${p.slice(1)}`, el("td", String(v), v))));
  $("ack-times").replaceChildren(a.time_to_ack_s
    ? el("span", `median ${a.time_to_ack_s.median} s, 90th percentile ${a.time_to_ack_s.p90} s (${a.acknowledged} acknowledged)`,
      `${a.time_to_ack_s.median}/${a.time_to_ack_s.p90}`)
    : el("span", "No alarm acknowledged in the period.", ""));
  const n = k.news2_now;
  $("band-now").replaceChildren(...Object.entries(n.by_band).map(([b, v]) => {
    const tr = row(BAND_TEXT[b] || b, el("td", String(v), v));
    tr.dataset.band = b;
    return tr;
  }));
  $("news2-dist").replaceChildren(...Object.entries(n.by_total).map(([t, v]) => {
    const tr = row(`NEWS2 ${t}`, el("td", String(v), v));
    tr.dataset.total = t;
    return tr;
  }), (() => { const tr = row("Incomplete", el("td", String(n.incomplete), n.incomplete)); tr.dataset.total = "incomplete"; return tr; })());
  drawCensus(k);
  document.body.dataset.kpiLoaded = String(k.now);
}

let chart = null;

function drawCensus(k) {
  const bands = Object.keys(BAND_TEXT);
  const xs = k.band_census.map((r) => r.t / 1000);
  const data = [xs, ...bands.map((b) => k.band_census.map((r) => r.bands[b]))];
  $("band-chart").dataset.slots = String(k.band_census.length);
  if (chart) { chart.setData(data); return; }
  chart = new uPlot({
    width: Math.max(320, $("band-chart").clientWidth || 800), height: 220,
    scales: { x: { time: true, range: () => [k.since / 1000, k.until / 1000] } },
    axes: [{ stroke: "#c5ccd6", grid: { stroke: "#2a313b" } }, { stroke: "#c5ccd6", grid: { stroke: "#2a313b" }, label: "beds" }],
    series: [{}, ...bands.map((b) => ({ label: BAND_TEXT[b], stroke: BAND_COLOUR[b], width: 2 }))],
  }, data, $("band-chart"));
}

async function load() {
  const res = await api("/api/kpi");
  if (!res.ok) {
    $("banner").hidden = false;
    $("banner").textContent = res.status === 403 ? "Your role does not see KPIs." : `The hub did not answer (${res.status}).`;
    return;
  }
  render(await res.json());
}

async function main() {
  const user = await startSession();
  if (!user) return;
  $("user-name").textContent = user.display_name;
  await load();
  setInterval(load, 60_000);
}

main();
