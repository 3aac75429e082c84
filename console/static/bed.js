// teleicu console: one bed's detail page (/bed/<id>): the patient, live vitals and scores, live waveforms, trends,
// charting, limits, the bed's alarm history, and its live video with push-to-talk (video_panel.js).
//
// Live vitals and alarms come from the ward's /ws/console feed; waveforms from /ws/waves?bed=<id> as binary chunks
// (layout in ingest/wave_feed.py), played out through a jitter buffer (wave_trace.js); trends from the trend API,
// drawn with uPlot (vendored from npm, served by the hub).

import uPlot from "./vendor/uplot/uPlot.esm.js";
import { api, renew, startSession, toSignIn } from "./session.js";
import { chartable, displayUnit, formatValue, loadVocabulary, paramLabel, paramUnit } from "./units.js";
import { VideoPanel } from "./video_panel.js";
import { WaveTrace, decodeChunk } from "./wave_trace.js";

const BED = decodeURIComponent(location.pathname.replace(/^\/bed\//, "").replace(/\/$/, ""));
const VITALS = ["hr", "spo2", "rr", "nibp_sys", "nibp_dia", "temp", "etco2", "o2", "acvpu", "fio2", "o2_flow"];
const TRENDS = ["hr", "spo2", "rr", "nibp_sys", "temp"];
const TREND_REFRESH_MS = 60_000;
const VIDEO_REFRESH_MS = 15_000; // whether the bed's camera gateway is connected, while the panel is closed
const BAND_TEXT = { high: "HIGH", medium: "MEDIUM", "low-medium": "LOW-MEDIUM", low: "LOW" };
const SUBSCORE_LABEL = {
  rr: "Respiration rate", spo2: "SpO₂", o2: "Air or oxygen", sbp: "Systolic BP", hr: "Pulse", acvpu: "Consciousness",
  temp: "Temperature", avpu: "Consciousness", mentation: "Altered mentation",
};
const CHOICES = { o2: [["air", "Air"], ["oxygen", "Oxygen"]], acvpu: [["A", "A — alert"], ["C", "C — new confusion"],
  ["V", "V — responds to voice"], ["P", "P — responds to pain"], ["U", "U — unresponsive"]] };

const $ = (id) => document.getElementById(id);
const state = { bed: null, user: null, ward: null, rangeH: 1, xRange: [0, 1], charts: new Map(), limits: {}, traces: new Map(), alerts: new Map() };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtTime(ms) {
  return ms ? new Date(ms).toLocaleString([], { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" }) : "—";
}

function ageYears(birth) {
  if (!birth) return null;
  const b = new Date(birth), now = new Date();
  return now.getFullYear() - b.getFullYear() - (now < new Date(now.getFullYear(), b.getMonth(), b.getDate()) ? 1 : 0);
}

function may(permission) {
  return Boolean(state.user && state.user.permissions && state.user.permissions.includes(permission));
}

// ---------------------------------------------------------------- patient, vitals, scores

function renderPatient(p) {
  const box = $("patient");
  box.replaceChildren();
  if (!p) {
    box.append(el("p", "empty", "No patient admitted to this bed."));
    return;
  }
  const age = ageYears(p.birth_date);
  box.append(el("p", "patient-name", p.name));
  const dl = el("dl", "facts");
  for (const [k, v] of [["Age, sex", `${age ?? "age unknown"}${p.sex ? ", " + p.sex : ""}`], ["MRN", p.mrn],
    ["Diagnosis", p.diagnosis || "—"], ["Attending", p.attending || "—"], ["Admitted", fmtTime(p.admitted)]]) {
    dl.append(el("dt", "", k), el("dd", "", v));
  }
  box.append(dl);
}

function renderVitals(vitals) {
  const dl = $("vitals");
  dl.replaceChildren();
  for (const key of VITALS) {
    const v = vitals[key];
    if (!v) continue;
    const old = v.age_s > 60;
    const dd = el("dd", old ? "old" : "");
    dd.dataset.param = key;
    dd.append(el("span", "value", formatValue(key, v.value)), el("span", "unit", ` ${paramUnit(key)}`));
    if (v.charted_by) dd.append(el("span", "charted", ` charted by ${v.charted_by}`));
    if (old) dd.append(el("span", "charted", ` (${v.age_s < 3600 ? Math.round(v.age_s / 60) + " min" : Math.round(v.age_s / 3600) + " h"} ago)`));
    dl.append(el("dt", "", paramLabel(key)), dd);
  }
  if (!dl.children.length) dl.append(el("dd", "empty", "No values yet."));
}

function scoreTable(name, row, extra) {
  const wrap = el("div", "score");
  const head = el("p", "score-head");
  if (row.total === null || row.total === undefined) {
    head.textContent = `${name}: incomplete (partial ${row.partial}; missing ${row.missing.map(paramLabel).join(", ")})`;
  } else {
    head.textContent = `${name} ${row.total}${extra ? " — " + extra : ""}`;
  }
  wrap.append(head);
  const t = el("table", "score-table");
  const body = el("tbody");
  for (const [k, pts] of Object.entries(row.subscores || {})) {
    const tr = el("tr");
    tr.append(el("th", "", SUBSCORE_LABEL[k] || paramLabel(k)), el("td", `pts pts-${pts ?? "none"}`, pts === null ? "missing" : String(pts)));
    body.append(tr);
  }
  t.append(body);
  wrap.append(t);
  return wrap;
}

function renderScores(b) {
  const box = $("scores");
  const band = b.news2.band && BAND_TEXT[b.news2.band];
  box.replaceChildren(
    scoreTable("NEWS2", b.news2, band ? `${band} risk` : ""),
    scoreTable("MEWS", b.mews, b.mews.triggered ? "triggered" : ""),
    scoreTable("qSOFA", b.qsofa, b.qsofa.positive ? "positive" : ""),
  );
  box.dataset.news2 = b.news2.total ?? "";
}

function showBed(b) {
  state.bed = b;
  document.title = `teleicu — bed ${b.bed}`;
  $("bed-id").textContent = `Bed ${b.bed}`;
  $("bed-ward").textContent = `ward ${b.ward}${b.online ? "" : " · monitor offline"}`;
  renderPatient(b.patient);
  renderVitals(b.vitals);
  renderScores(b);
  $("scale2").checked = b.settings && b.settings.spo2_scale === 2;
}

// ---------------------------------------------------------------- live feed (ward console feed)

function setConn(kind, text) {
  $("conn").dataset.conn = kind;
  $("conn-text").textContent = text;
}

function liveFeed() {
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/console?ward=${encodeURIComponent(state.ward)}`;
  const ws = new WebSocket(url);
  ws.onopen = () => setConn("live", "live");
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "snapshot" || msg.type === "beds") {
      const mine = msg.beds.find((x) => x.bed === BED);
      if (mine) showBed(mine);
    }
    const alerts = msg.type === "snapshot" ? msg.alerts : msg.type === "alert" ? [msg.alert] : [];
    const seen = alerts.filter((a) => a.bed === BED);
    if (seen.length) {
      for (const a of seen) state.alerts.set(a.id, a);
      renderHistory();
      ws.send(JSON.stringify({ type: "delivered", alerts: seen.map((a) => a.id) })); // shown here, to a clinician
    }
  };
  ws.onclose = async (ev) => {
    setConn("reconnecting", "reconnecting…");
    if (ev.code === 4401 || ev.code === 1008) {
      if ((await renew()) === false) return toSignIn();
    }
    setTimeout(liveFeed, 2000);
  };
}

// ---------------------------------------------------------------- waveforms

function waveFeed() {
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/waves?bed=${encodeURIComponent(BED)}`;
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (ev) => {
    const chunk = decodeChunk(ev.data);
    let trace = state.traces.get(chunk.lead);
    if (!trace) {
      $("waves-empty").hidden = true;
      const fig = el("figure", "wave");
      const canvas = el("canvas");
      canvas.id = `wave-${chunk.lead}`;
      canvas.width = 900;
      canvas.height = 140;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `${chunk.lead === "ecg_ii" ? "ECG lead II" : chunk.lead} waveform, live`);
      fig.append(canvas, el("figcaption", "", chunk.lead === "ecg_ii" ? "ECG II" : chunk.lead === "pleth" ? "Pleth" : chunk.lead));
      $("wave-list").append(fig);
      trace = new WaveTrace(canvas, chunk.lead);
      state.traces.set(chunk.lead, trace);
    }
    trace.add(chunk, Date.now());
  };
  ws.onclose = () => setTimeout(waveFeed, 2000);
}

function drawWaves() {
  const now = Date.now();
  for (const trace of state.traces.values()) trace.draw(now);
  requestAnimationFrame(drawWaves);
}

// ---------------------------------------------------------------- trends

async function loadTrend(param) {
  const until = Date.now();
  const since = until - state.rangeH * 3_600_000;
  const res = await api(`/api/beds/${encodeURIComponent(BED)}/trend?param=${param}&since=${since}&until=${until}`);
  if (!res.ok) return;
  const body = await res.json();
  const pts = body.points.filter((p) => p.value !== null && p.flags === 0);
  // the period's two ends carry no value, only the limits, so the limit lines span the whole chart
  const xs = [since / 1000, ...pts.map((p) => p.t / 1000), until / 1000];
  const ys = [null, ...pts.map((p) => p.value), null];
  const lim = state.limits[param] || {};
  const low = xs.map(() => lim.low ?? null);
  const high = xs.map(() => lim.high ?? null);
  let chart = state.charts.get(param);
  const box = $(`trend-${param}`);
  box.dataset.points = String(pts.length);
  box.dataset.last = pts.length ? String(pts[pts.length - 1].value) : "";
  box.dataset.since = String(since);
  box.dataset.until = String(until);
  const data = [xs, ys, low, high];
  state.xRange = [since / 1000, until / 1000];
  if (chart) {
    chart.setData(data);
    return;
  }
  const unit = displayUnit(body.unit);
  chart = new uPlot({
    width: Math.max(300, box.clientWidth || 600), height: 160,
    scales: { x: { time: true, range: () => state.xRange } },  // the period asked for, not just where points are
    axes: [{ stroke: "#c5ccd6", grid: { stroke: "#2a313b" } }, { stroke: "#c5ccd6", grid: { stroke: "#2a313b" }, label: unit }],
    series: [{}, { label: `${paramLabel(param)}${unit ? " (" + unit + ")" : ""}`, stroke: "#74c0fc", width: 2, points: { show: false } },
      { label: "low limit", stroke: "#f59f00", dash: [6, 4], width: 1, points: { show: false } },
      { label: "high limit", stroke: "#ff6b6b", dash: [6, 4], width: 1, points: { show: false } }],
  }, data, box);
  state.charts.set(param, chart);
}

function buildTrends() {
  const list = $("trend-list");
  for (const p of TRENDS) {
    const fig = el("figure", "trend");
    const box = el("div", "trend-chart");
    box.id = `trend-${p}`;
    fig.append(el("figcaption", "", paramLabel(p)), box);
    list.append(fig);
  }
  for (const b of document.querySelectorAll(".range button")) {
    b.addEventListener("click", () => {
      state.rangeH = Number(b.dataset.range);
      for (const o of document.querySelectorAll(".range button")) o.setAttribute("aria-pressed", String(o === b));
      refreshTrends();
    });
  }
}

async function refreshTrends() {
  await Promise.all(TRENDS.map(loadTrend));
  document.body.dataset.trendsLoaded = String(Date.now());
}

// ---------------------------------------------------------------- alarms, gaps

function renderHistory() {
  const rows = [...state.alerts.values()].sort((a, b) => b.raised - a.raised).slice(0, 50);
  const body = $("history-rows");
  body.replaceChildren();
  for (const a of rows) {
    const tr = el("tr", `prio-${a.priority}`);
    const silenced = a.silenced_until && a.silenced_until > Date.now() ? `, silenced (${a.silence_reason || "no reason"})` : "";
    tr.append(el("td", "", fmtTime(a.raised)), el("td", "", a.title), el("td", "", a.priority),
      el("td", "", a.state + silenced), el("td", "", a.acked_by || "—"));
    body.append(tr);
  }
  if (!rows.length) {
    const tr = el("tr");
    const td = el("td", "empty", "No alarms.");
    td.colSpan = 5;
    tr.append(td);
    body.append(tr);
  }
}

async function loadHistory() {
  const res = await api(`/api/alerts?bed=${encodeURIComponent(BED)}&state=all&limit=200`);
  if (res.ok) for (const a of (await res.json()).alerts) if (a.bed === BED) state.alerts.set(a.id, a);
  renderHistory();
  const since = Date.now() - 24 * 3_600_000;
  const gaps = await api(`/api/gaps?bed=${encodeURIComponent(BED)}&since=${since}`);
  const list = $("gap-list");
  list.replaceChildren();
  const got = gaps.ok ? (await gaps.json()).gaps : [];
  for (const g of got) list.append(el("li", "", `${fmtTime(g.start)} to ${fmtTime(g.end)} (${Math.round((g.end - g.start) / 1000)} s without data)`));
  if (!got.length) list.append(el("li", "empty", "None."));
}

// ---------------------------------------------------------------- charting, limits, settings

function chartChoices() {
  const param = $("chart-param").value;
  const choices = CHOICES[param];
  $("chart-choice").hidden = !choices;
  $("chart-number").hidden = Boolean(choices);
  $("chart-choice").replaceChildren(...(choices || []).map(([v, label]) => { const o = el("option", "", label); o.value = v; return o; }));
}

async function submitChart(ev) {
  ev.preventDefault();
  const param = $("chart-param").value;
  const value = CHOICES[param] ? $("chart-choice").value : Number($("chart-number").value);
  const res = await api(`/api/beds/${encodeURIComponent(BED)}/chart`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ param, value }),
  });
  const body = await res.json().catch(() => ({}));
  $("chart-status").textContent = res.ok ? `Charted: ${paramLabel(param)} ${formatValue(param, body.value)} ${paramUnit(param)}`
    : `Not charted: ${body.detail || res.status}`;
  $("chart-status").dataset.ok = String(res.ok);
}

async function loadLimits() {
  const res = await api(`/api/beds/${encodeURIComponent(BED)}/limits`);
  if (!res.ok) return;
  state.limits = (await res.json()).limits;
  const body = $("limit-rows");
  body.replaceChildren();
  const editable = may("clinical_settings");
  for (const [param, lim] of Object.entries(state.limits)) {
    const tr = el("tr");
    const unit = displayUnit(lim.unit);
    const inputs = ["low", "high"].map((side) => {
      const input = el("input");
      input.type = "number";
      input.step = "any";
      input.value = lim[side] ?? "";
      input.disabled = !editable;
      input.setAttribute("aria-label", `${paramLabel(param)} ${side} limit${unit ? " (" + unit + ")" : ""}`);
      const td = el("td");
      td.append(input);
      return [input, td];
    });
    const save = el("button", "", "Save");
    save.type = "button";
    save.disabled = !editable;
    save.setAttribute("aria-label", `Save ${paramLabel(param)} limits`);
    save.addEventListener("click", () => saveLimit(param, inputs[0][0].value, inputs[1][0].value));
    const saveCell = el("td");
    saveCell.append(save);
    tr.append(el("th", "", `${paramLabel(param)}${unit ? " (" + unit + ")" : ""}`), inputs[0][1], inputs[1][1],
      el("td", "", lim.source === "bed" ? "this bed" : "ward policy"), saveCell);
    body.append(tr);
  }
  $("scale2").disabled = !editable;
  $("settings-note").textContent = editable ? "" : "Only an intensivist changes limits and the SpO₂ scale.";
}

async function saveLimit(param, low, high) {
  const res = await api(`/api/beds/${encodeURIComponent(BED)}/limits`, {
    method: "PUT", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ param, low: low === "" ? null : Number(low), high: high === "" ? null : Number(high) }),
  });
  const body = await res.json().catch(() => ({}));
  $("limits-status").textContent = res.ok ? `${paramLabel(param)} limits saved.` : `Not saved: ${body.detail || res.status}`;
  if (res.ok) { await loadLimits(); refreshTrends(); }
}

async function saveScale(ev) {
  const res = await api(`/api/beds/${encodeURIComponent(BED)}/settings`, {
    method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ spo2_scale: ev.target.checked ? 2 : 1 }),
  });
  const body = await res.json().catch(() => ({}));
  $("limits-status").textContent = res.ok ? `SpO₂ scale ${ev.target.checked ? 2 : 1} in use.` : `Not changed: ${body.detail || res.status}`;
  if (!res.ok) ev.target.checked = !ev.target.checked;
}

// ---------------------------------------------------------------- start

async function main() {
  state.user = await startSession();
  if (!state.user) return;
  $("user-name").textContent = state.user.display_name;
  await loadVocabulary();
  const res = await api(`/api/beds/${encodeURIComponent(BED)}`);
  if (!res.ok) {
    $("banner").hidden = false;
    $("banner").textContent = res.status === 404 ? `There is no bed ${BED} among your wards.` : `The hub did not answer (${res.status}).`;
    $("patient").replaceChildren(el("p", "empty", "—"));
    return;
  }
  const bed = await res.json();
  state.ward = bed.ward;
  showBed(bed);
  buildTrends();
  $("chart-param").replaceChildren(...chartable().map((p) => {
    const o = el("option", "", p.written ? `${p.label} (${p.written})` : p.label);
    o.value = p.key;
    return o;
  }));
  chartChoices();
  $("chart-param").addEventListener("change", chartChoices);
  $("chart-form").addEventListener("submit", submitChart);
  $("scale2").addEventListener("change", saveScale);
  if (!may("chart")) for (const c of $("chart-form").elements) c.disabled = true;
  await loadLimits();
  await Promise.all([refreshTrends(), loadHistory()]);
  setInterval(refreshTrends, TREND_REFRESH_MS);
  liveFeed();
  waveFeed();
  requestAnimationFrame(drawWaves);
  const video = new VideoPanel({ bed: BED, api, root: $("video-panel") });
  await video.refresh();
  setInterval(() => video.open || video.refresh(), VIDEO_REFRESH_MS);
}

main();
