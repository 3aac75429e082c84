// teleicu console: live census + alert list.
//
// Plain ES module, no dependencies. Data arrives over the /ws/console WebSocket
// (a full "snapshot" first and after every reconnect, then "beds" deltas and
// "alert" events). Each bed tile is built once and afterwards only the parts
// that changed are written, batched into one animation frame; a 1 s timer
// advances every age locally so a stalled feed still turns values stale.

import { api, renew, signOut, startSession, toSignIn } from "./session.js";
import {
  PRIORITY_RANK, alarmOrder, announcement, bedHeadline, groupByBed, groupKey, isEscalated, isHeld, isLatched, isAudible, isSilenced,
  keepAlarm, liveTitle, news2Now, partsToggleText, shownParts, stateChips, tierOfRole,
} from "./alarm_queue.js";
import { playBurst, setSound, soundOn } from "./alarm_sound.js";
import { Spark, WINDOW_MS } from "./sparkline.js";
import { loadVocabulary, paramUnit } from "./units.js";

// ---------------------------------------------------------------- constants

/** Seconds after which a value is no longer current. These defaults are replaced
 *  by the hub's own limits (config/hub.yaml), sent in every snapshot. */
const STALE_AFTER_S = {
  hr: 30, pr: 30, spo2: 30, rr: 30, etco2: 30,
  nibp: 20 * 60,
  temp: 4 * 3600, acvpu: 4 * 3600, o2: 4 * 3600,
};

/** Risk order for the default sort. A bed we cannot assess (unknown: its monitor is silent or
 *  its gateway offline, or a vital the monitor measures is missing) is placed above beds known
 *  to be low risk, below any bed known to need review. A score missing only what is charted
 *  (air/oxygen, ACVPU) is "incomplete": its partial sum is shown as such and it sorts between
 *  the unknown and the low. */
const BAND_RANK = { high: 6, medium: 5, "low-medium": 4, unknown: 3, incomplete: 2, low: 1 };
const BAND_LABEL = {
  high: "HIGH", medium: "MEDIUM", "low-medium": "LOW-MED", low: "LOW", unknown: "UNKNOWN", incomplete: "INCOMPLETE",
};
const BAND_TITLE = {
  high: "high clinical risk", medium: "medium clinical risk",
  "low-medium": "low-medium clinical risk", low: "low clinical risk",
  unknown: "risk unknown", incomplete: "incomplete score, band not proved",
};
const BANDS_IN_ORDER = ["high", "medium", "low-medium", "unknown", "incomplete", "low"];
/** NEWS2 inputs no monitor measures: a nurse charts them. Only these missing makes a score "incomplete", not "unknown". */
const CHARTED_ONLY = new Set(["o2", "acvpu"]);
/** Whole-tile states: the bed's values are not live, whatever their ages say. */
const TILE_STATE_LABEL = { offline: "AGENT OFFLINE", "no-data": "NO DATA" };
/** The summary chips that filter the census: the bands, then the whole-tile states. */
const FILTER_KEYS = [...BANDS_IN_ORDER, "no-data", "offline"];
const FILTER_LABEL = { ...BAND_LABEL, ...TILE_STATE_LABEL };
const VIEW_KEY = "teleicu.census.view";  // localStorage: "table" or "tiles"

const ACVPU_LETTERS = ["A", "C", "V", "P", "U"];

/** Which NEWS2 subscore colours which tile cell. */
const SUBSCORE_CELL = { rr: "rr", spo2: "spo2", o2: "o2", sbp: "nibp", hr: "hr", acvpu: "acvpu", temp: "temp" };
/** Which NEWS2 subscore a tile cell shows (the reverse of SUBSCORE_CELL). */
const CELL_SUBSCORE = Object.fromEntries(Object.entries(SUBSCORE_CELL).map(([sk, ck]) => [ck, sk]));
const SUBSCORE_NAME = {
  rr: "respiration rate", spo2: "SpO2", o2: "air/oxygen", sbp: "systolic BP",
  hr: "pulse", acvpu: "consciousness (ACVPU)", temp: "temperature",
};

/** Tile cells in display order: [param key, label]. */
const CELLS = [
  ["hr", "HR"], ["spo2", "SpO₂"], ["rr", "RR"],
  ["nibp", "NIBP"], ["temp", "Temp"],
  ["etco2", "EtCO₂"], ["o2", "O₂"], ["acvpu", "ACVPU"],
];

const STALL_WARN_MS = 10_000;    // no message while beds are shown: warn
const STALL_RECONNECT_MS = 30_000; // …and after this long, reconnect
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;

// ---------------------------------------------------------------- state

/** bed id -> Tile */
const beds = new Map();
/** alert id -> AlertRow */
const alerts = new Map();
/** ids seen resolved since the last snapshot: a late ack response must not revive them */
const resolvedIds = new Set();
/** ward -> header element (used when grouping by ward) */
const wardHeaders = new Map();

const dirtyBeds = new Set();
let orderDirty = true;          // re-sort soon (data changed a sort key)
let orderNow = true;            // re-sort at the next frame (beds added/removed, user action)
let lastOrderAt = -Infinity;
/** Risk changes re-sort the grid at most this often, so tiles don't jump under the reader's eyes. */
const REORDER_MIN_MS = 3000;
let alertsDirty = true;
let bedAlertsDirty = false;     // alarms changed: recount each bed's alarms (markBedAlerts) at the next flush
let summaryDirty = true;
let flushScheduled = false;

let serverOffsetMs = 0;          // server clock minus local clock
let sortMode = "risk";
/** A band (or whole-tile state) chosen from the summary chips: the census shows those beds only ("" all). */
let bandFilter = "";
/** "tiles" or "table" (the dense table for hundreds of beds), remembered by the browser. */
let viewMode = readView();
/** The table's own column sort ({key, dir}), or null to follow the Order choice. */
let tableSort = null;
/** The ward shown (tiles and alarms alike): from the page's address (/?ward=A), the ward filter, or a ward nurse's one ward. */
let wardFilter = new URLSearchParams(location.search).get("ward") || "";
/** Every ward this console has heard of: the ward filter's choices survive a one-ward feed. */
const knownWards = new Set();

const conn = {
  ws: null,
  state: "connecting",           // connecting | live | stalled | reconnecting
  attempt: 0,
  retryAt: 0,
  retryTimer: 0,
  lastMsgAt: 0,                  // performance.now() of last message
  lostAt: 0,                     // Date.now() when the feed was last known good
};

const $ = (id) => document.getElementById(id);
const el = {
  grid: $("grid"), gridEmpty: $("grid-empty"),
  alertList: $("alert-list"), alertsEmpty: $("alerts-empty"), alertCount: $("alert-count"),
  conn: $("conn"), connText: $("conn-text"), banner: $("banner"),
  summary: $("summary"), wardFilter: $("ward-filter"), sortMode: $("sort-mode"),
  filterNote: $("filter-note"), filterText: $("filter-text"), filterClear: $("filter-clear"),
  viewToggle: $("view-toggle"), table: $("census-table"), tbody: $("census-rows"),
  userName: $("user-name"), signOut: $("sign-out"),
  announcer: $("alarm-announcer"), sound: $("sound-toggle"),
  fPriority: $("f-priority"), fCategory: $("f-category"), fMine: $("f-mine"),
};

// ---------------------------------------------------------------- helpers

const perfNow = () => performance.now();
const serverNow = () => Date.now() + serverOffsetMs;

function h(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) { n.textContent = text; n.__text = text; }
  return n;
}

/** Write only when different: DOM writes are the expensive part, and at 500 beds so are the reads that
 *  would tell. What these helpers last wrote is kept on the node (the page writes these texts,
 *  attributes and classes through them only), so an unchanged value costs one comparison. */
function setText(node, text) {
  if (node.__text === text) return;
  node.__text = text;
  if (node.textContent !== text) node.textContent = text;
}
function setAttr(node, name, value) {
  const v = value === null || value === undefined ? null : value;
  const seen = node.__attrs || (node.__attrs = new Map());
  if (seen.has(name) && seen.get(name) === v) return;
  seen.set(name, v);
  if (v === null) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== v) {
    node.setAttribute(name, v);
  }
}
function setClass(node, cls, on) {
  const seen = node.__cls || (node.__cls = new Map());
  if (seen.get(cls) === on) return;
  seen.set(cls, on);
  if (node.classList.contains(cls) !== on) node.classList.toggle(cls, on);
}
function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}

function fmtAge(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "";
  s = Math.max(0, s);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const CLOCK = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

function fmtClock(ms) {
  if (!Number.isFinite(ms)) return "—";
  return CLOCK.format(new Date(ms));
}

function fmtFlags(flags) {
  return flags.map((f) => String(f).replace(/_/g, " ").toUpperCase()).join(" ");
}

const naturalCmp = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" }).compare;

const ROLE_LABEL = {
  intensivist: "intensivist", teleicu_nurse: "tele-ICU nurse", ward_nurse: "ward nurse",
  admin: "administrator", viewer: "viewer",
};

/** The signed-in user (from the hub's session, never typed in): shown in the header, recorded by the hub. */
let user = null;

function renderUser() {
  if (!user) { setText(el.userName, ""); return; }
  const wards = user.all_wards ? "all wards" : `ward${user.wards.length > 1 ? "s" : ""} ${user.wards.join(", ")}`;
  setText(el.userName, `${user.display_name} · ${ROLE_LABEL[user.role] || user.role} · ${wards}`);
}

// ---------------------------------------------------------------- bed tiles

/**
 * A tile keeps the latest Bed fields, each vital with the local time it was
 * received (ages advance from there), and references to its DOM nodes.
 */
function createTile(id) {
  const root = h("article", "tile");
  root.dataset.bed = id;
  root.tabIndex = 0;  // reachable by keyboard; Enter (or a click) opens the bed's detail page
  root.setAttribute("aria-label", `Bed ${id}: open its detail`);
  root.addEventListener("keydown", (ev) => {
    if ((ev.key === "Enter" || ev.key === " ") && ev.target === root) { ev.preventDefault(); openBed(id); }
  });
  root.addEventListener("click", (ev) => { if (!ev.target.closest("a, button, select, input")) openBed(id); });

  const head = h("header", "tile-head");
  const name = h("span", "bed-id", id);
  const ward = h("span", "bed-ward");
  const alertChip = h("span", "alert-chip");
  alertChip.hidden = true;
  const badge = h("span", "news2");
  badge.dataset.news2Band = "unknown";
  const badgeNum = h("span", "news2-num", "—");
  const badgeStack = h("span", "news2-stack");
  const badgeBand = h("span", "news2-band", "UNKNOWN");
  const badgeInc = h("span", "news2-inc", "incomplete");
  badgeInc.hidden = true;
  badgeStack.append(badgeBand, badgeInc);
  badge.append(badgeNum, badgeStack);
  head.append(name, ward, alertChip, badge);

  const status = h("div", "tile-status");
  status.hidden = true;
  const patient = h("div", "tile-patient");
  patient.hidden = true;

  const body = h("div", "vitals");
  const cells = {};
  for (const [key, label] of CELLS) {
    const c = h("div", `vital vital-${key}`);
    c.dataset.param = key;
    const lbl = h("span", "lbl", label);
    const v = h("span", "v", "—");
    const age = h("span", "age", "");
    const tag = h("span", "tag", "STALE");
    tag.hidden = true;
    c.append(lbl, age, v, tag);
    body.append(c);
    cells[key] = { root: c, lbl, v, age, tag, label };
  }

  // the last 30 min of heart rate, from the values this console receives
  const sparkRow = h("div", "spark-row");
  const sparkLbl = h("span", "spark-lbl", "HR 30 min");
  const spark = document.createElement("canvas");
  spark.className = "spark";
  const dpr = Math.min(2, window.devicePixelRatio || 1);
  spark.width = Math.round(200 * dpr);
  spark.height = Math.round(22 * dpr);
  spark.setAttribute("role", "img");
  spark.setAttribute("aria-label", "heart rate over the last 30 minutes: no values yet");
  const sparkRange = h("span", "spark-range", "");
  sparkRow.append(sparkLbl, spark, sparkRange);

  root.append(head, status, patient, body, sparkRow);
  return {
    id, ward: "", agent: "", online: true, lastRx: null, lastRxAge: null, recvAt: 0,
    settings: {}, vitals: {}, news2: null, alertPrio: 0, alertCount: 0, topAlarm: null, noDataAlarm: false,
    patient: null, spark: new Spark(), state: "", band: "unknown", score: -1, views: null,
    sortKey: null, row: null,
    dom: { root, name, ward, alertChip, badge, badgeNum, badgeBand, badgeInc, status, patient, cells, spark, sparkRange },
  };
}

/** patientText(t.patient), kept on the tile: the same patient object gives the same text for a minute. */
function tilePatientText(t) {
  const now = perfNow();
  const c = t.patientCache;
  if (c && c.p === t.patient && now - c.at < 60_000) return c.text;
  const text = patientText(t.patient);
  t.patientCache = { p: t.patient, at: now, text };
  return text;
}

/** "Naresh Kumar Mali, 64 M" from the bed's patient (once admitted). */
function patientText(p) {
  if (!p || !p.name) return "";
  let age = "";
  const born = p.birth_date ? Date.parse(p.birth_date) : NaN;
  if (Number.isFinite(born)) age = String(Math.floor((serverNow() - born) / (365.2425 * 86_400_000)));
  const sex = p.sex ? String(p.sex).charAt(0).toUpperCase() : "";
  const tail = [age, sex].filter(Boolean).join(" ");
  return tail ? `${p.name}, ${tail}` : p.name;
}

/** Apply one Bed object from the hub. `replace` drops vitals not mentioned. */
function applyBed(b, nowMs, replace) {
  if (!b || typeof b.bed !== "string") return;
  let t = beds.get(b.bed);
  if (!t) {
    t = createTile(b.bed);
    beds.set(b.bed, t);
    orderNow = true;
  }
  const at = perfNow();
  if (b.ward !== undefined && b.ward !== t.ward) { t.ward = String(b.ward); orderDirty = true; }
  if (b.agent !== undefined) t.agent = b.agent;
  if (b.online !== undefined) t.online = !!b.online;
  if (b.last_rx !== undefined) {
    t.lastRx = b.last_rx;
    t.lastRxAge = Number.isFinite(b.last_rx) && Number.isFinite(nowMs) ? Math.max(0, (nowMs - b.last_rx) / 1000) : null;
  }
  t.recvAt = at;
  if (b.settings) t.settings = b.settings;
  if (b.patient !== undefined) t.patient = b.patient;
  if (b.vitals) {
    if (replace) t.vitals = {};
    for (const [k, v] of Object.entries(b.vitals)) {
      if (!v) continue;
      t.vitals[k] = {
        value: v.value ?? null,
        flags: Array.isArray(v.flags) ? v.flags : [],
        ageS: Number.isFinite(v.age_s) ? Math.max(0, v.age_s) : null,
        at,
      };
    }
  } else if (replace) {
    t.vitals = {};
  }
  if (b.news2 !== undefined) t.news2 = b.news2;
  // the sparkline's heart rate (pulse rate when there is no ECG), at the time it was measured
  const hr = b.vitals && (b.vitals.hr || b.vitals.pr);
  if (hr && !(hr.flags && hr.flags.length) && Number.isFinite(hr.value) && Number.isFinite(hr.age_s) && Number.isFinite(nowMs)) {
    t.spark.push(nowMs - hr.age_s * 1000, hr.value);
  }
  dirtyBeds.add(t);
  summaryDirty = true;
}

function vitalAge(v, now) {
  return v.ageS === null ? null : v.ageS + (now - v.at) / 1000;
}

/** What one cell should show, computed from tile state at time `now`. */
function cellView(t, key, now) {
  const V = t.vitals;
  const view = { text: "—", age: null, stale: false, flagged: false, missing: true, label: null, title: "" };
  const fmtInt = (x) => String(Math.round(x));
  const simple = (k, fmt) => {
    const v = V[k];
    if (!v) return;
    view.missing = false;
    view.age = vitalAge(v, now);
    if (v.flags.length) {
      view.flagged = true;
      view.text = fmtFlags(v.flags);
    } else if (v.value === null || !Number.isFinite(Number(v.value))) {
      view.text = "—";
      view.missing = true;
    } else {
      view.text = fmt(Number(v.value));
    }
  };

  switch (key) {
    case "hr":
      if (!V.hr && V.pr) { simple("pr", fmtInt); view.label = "PR"; }
      else simple("hr", fmtInt);
      break;
    case "spo2": simple("spo2", fmtInt); break;
    case "rr": simple("rr", fmtInt); break;
    case "etco2": simple("etco2", fmtInt); break;
    case "temp": simple("temp", (x) => x.toFixed(1)); break;
    case "o2": simple("o2", (x) => (x >= 1 ? "O₂" : "Air")); break;
    case "acvpu": simple("acvpu", (x) => ACVPU_LETTERS[Math.round(x)] ?? "?"); break;
    case "nibp": {
      const s = V.nibp_sys, d = V.nibp_dia, m = V.nibp_mean;
      const parts = [s, d, m].filter(Boolean);
      if (!parts.length) break;
      view.missing = false;
      // The reading is as old as its oldest part.
      const ages = parts.map((p) => vitalAge(p, now)).filter((a) => a !== null);
      view.age = ages.length ? Math.max(...ages) : null;
      const flags = [...new Set(parts.flatMap((p) => p.flags))];
      const num = (p) => (p && p.value !== null && Number.isFinite(Number(p.value)) ? String(Math.round(Number(p.value))) : null);
      if (flags.length) {
        view.flagged = true;
        view.text = fmtFlags(flags);
      } else if (num(s) === null && num(d) === null) {
        view.missing = true;
      } else {
        view.text = `${num(s) ?? "?"}/${num(d) ?? "?"}` + (num(m) !== null ? ` (${num(m)})` : "");
      }
      break;
    }
  }
  const limit = STALE_AFTER_S[key === "hr" && view.label === "PR" ? "pr" : key];
  view.stale = view.age !== null && limit !== undefined && view.age > limit;
  return view;
}

/**
 * What a bed's tile and table row show at time `now`, from its state: the cell views, the
 * whole-tile state, the NEWS2 band (with what the console knows since the hub scored it), the sort key.
 */
function assess(t, now) {
  // Cell views first: the badge needs to know which scored values went stale here.
  const views = {};
  for (const [key] of CELLS) views[key] = cellView(t, key, now);

  // Whole-tile state: the gateway is offline, or the hub says the monitor has been silent for its
  // ward's no_data time (its "no data" alarm is open), or nothing was ever received.
  const rxAge = Number.isFinite(t.lastRx) ? Math.max(0, (serverNow() - t.lastRx) / 1000) : null;
  let state = "";
  if (!t.online) state = "offline";
  else if ((t.noDataAlarm && (rxAge === null || rxAge > 3)) || t.lastRx === null) state = "no-data";

  const n = t.news2 || {};
  const subs = n.subscores || {};
  let band = BAND_LABEL[n.band] ? n.band : "unknown";
  let incomplete = !!n.incomplete || !Number.isFinite(n.total);
  let partial = Number.isFinite(n.partial) ? n.partial : null;
  const missing = Array.isArray(n.missing) ? [...n.missing] : [];
  // The hub scored these components, but their values have aged past the
  // staleness limit since (feed stalled or dropped): they no longer count.
  const agedOut = Object.keys(SUBSCORE_CELL).filter((k) =>
    Number.isFinite(subs[k]) && views[SUBSCORE_CELL[k]].stale && !missing.includes(k));
  if (t.news2 && agedOut.length) {
    incomplete = true;
    missing.push(...agedOut);
    partial = Object.entries(subs).reduce((acc, [k, v]) => acc + (Number.isFinite(v) && !missing.includes(k) ? v : 0), 0);
    const three = Object.entries(subs).some(([k, v]) => v === 3 && !missing.includes(k));
    // What the remaining components prove, as a lower bound.
    band = partial >= 7 ? "high" : partial >= 5 ? "medium" : three ? "low-medium" : "unknown";
  }
  if (!t.news2) incomplete = false;
  // An unproved band: "incomplete" when only charted inputs are missing, "unknown" when the monitor's are.
  if (t.news2 && incomplete && band === "unknown" && missing.length && missing.every((m) => CHARTED_ONLY.has(m))) band = "incomplete";
  // A silent or disconnected monitor: nothing it showed is current, whatever its score was.
  if (state) band = "unknown";

  const score = !t.news2 || state ? -1 : incomplete ? (partial ?? -1) : n.total;
  const key = `${BAND_RANK[band]}|${score}|${t.alertPrio}|${state}`;
  if (key !== t.sortKey) { t.sortKey = key; orderDirty = true; }
  if (band !== t.band || state !== t.state) summaryDirty = true;
  t.band = band;
  t.score = score;
  t.state = state;
  t.views = views;
  // For the once-a-second age pass: when each shown age was zero (local clock) and its staleness limit.
  const ages = t.ages || (t.ages = {});
  for (const [key] of CELLS) {
    const v = views[key];
    const limit = STALE_AFTER_S[key === "hr" && v.label === "PR" ? "pr" : key];
    ages[key] = v.age === null ? null : { zeroAt: now - v.age * 1000, limit, stale: v.stale, text: fmtAge(v.age) };
  }
  return { views, state, rxAge, band, incomplete, partial, missing, agedOut, subs, n };
}

/** The NEWS2 badge's number, its band and the small line under it, and its tooltip. */
function badgeView(t, a) {
  const { band, incomplete, partial, missing, agedOut, subs, n, state } = a;
  let num, sub = "", title;
  if (state) {
    num = "—";
    sub = state === "offline" ? "offline" : "no data";
    title = `NEWS2 not current: ${TILE_STATE_LABEL[state].toLowerCase()}`;
  } else if (!t.news2) {
    num = "—";
    title = "NEWS2 not available yet";
  } else if (incomplete) {
    num = partial !== null && partial > 0 && band !== "incomplete" && band !== "unknown" ? `≥${partial}` : "—";
    sub = band === "incomplete" || band === "unknown" ? (partial !== null ? `partial ${partial}` : "incomplete") : "incomplete";
    title = `NEWS2 incomplete — ${BAND_TITLE[band]}` +
      (missing.length ? `\nmissing: ${missing.map((m) => SUBSCORE_NAME[m] || m).join(", ")}` : "") +
      (agedOut.length ? `\n(now stale here: ${agedOut.map((m) => SUBSCORE_NAME[m] || m).join(", ")})` : "") +
      (partial !== null ? `\npartial sum of available components: ${partial}` : "");
  } else {
    num = String(n.total);
    title = `NEWS2 ${n.total} — ${BAND_TITLE[band]}`;
  }
  if (n.any_three && !state) title += "\na single parameter scores 3";
  if (n.subscores && !state) {
    const parts = Object.entries(subs).map(([k, v]) => `${SUBSCORE_NAME[k] || k}: ${v === null ? "—" : v}`);
    title += `\n${parts.join(" · ")}`;
  }
  if (Number(t.settings?.spo2_scale) === 2) title += "\nSpO2 scale 2 (hypercapnic target)";
  return { num, sub, title };
}

/** "AGENT OFFLINE · last data 2m ago" */
function stateText(state, rxAge) {
  if (!state) return "";
  return `${TILE_STATE_LABEL[state]} · ${rxAge === null ? "no data received" : `last data ${fmtAge(rxAge)} ago`}`;
}

function renderTile(t, now) {
  const a = assess(t, now);
  if (viewMode === "table") { renderRow(t, a); return; }
  const d = t.dom;
  const { views, state } = a;

  // header
  setText(d.ward, t.ward ? `ward ${t.ward}` : "");
  if (t.alertCount > 0) {
    setHidden(d.alertChip, false);
    const p = t.alertPrio === 3 ? "high" : t.alertPrio === 2 ? "medium" : "low";
    setText(d.alertChip, `⚠ ${t.alertCount} ${p.toUpperCase()}`);
    setAttr(d.alertChip, "data-priority", p);
    setAttr(d.alertChip, "title", `${t.alertCount} active alert${t.alertCount > 1 ? "s" : ""}` +
      (t.topAlarm ? `; highest: ${t.topAlarm.title}` : ""));
  } else {
    setHidden(d.alertChip, true);
  }
  const who = tilePatientText(t);
  setText(d.patient, who);
  setHidden(d.patient, !who);

  // NEWS2 badge
  const bv = badgeView(t, a);
  setAttr(d.badge, "data-news2-band", a.band);
  setAttr(d.badge, "data-incomplete", a.incomplete && !state ? "true" : "false");
  setAttr(d.badge, "title", bv.title);
  setText(d.badgeNum, bv.num);
  setText(d.badgeBand, BAND_LABEL[a.band]);
  setText(d.badgeInc, bv.sub);
  setHidden(d.badgeInc, !bv.sub);

  // whole-tile state: in words, every value dimmed and struck through
  setAttr(d.root, "data-tile-state", state || null);
  setClass(d.root, "offline", state === "offline");
  setAttr(d.root, "aria-label", `Bed ${t.id}${state ? ` (${TILE_STATE_LABEL[state]})` : ""}: open its detail`);
  if (state) setText(d.status, stateText(state, a.rxAge));
  setHidden(d.status, !state);

  // vitals (each cell's tooltip, whose age moves every second, is written when pointed at: cellTip)
  for (const [key] of CELLS) {
    const c = d.cells[key];
    const v = views[key];
    setText(c.lbl, v.label || (key === "spo2" && Number(t.settings?.spo2_scale) === 2 ? "SpO₂ S2" : c.label));
    setText(c.v, v.text);
    setText(c.age, v.age === null ? "" : fmtAge(v.age));
    setClass(c.root, "stale", v.stale);
    setClass(c.root, "flagged", v.flagged);
    setClass(c.root, "missing", v.missing && !v.flagged);
    setAttr(c.root, "data-stale", v.stale ? "true" : "false");
    // Colour a cell by its NEWS2 subscore only while the value is current.
    const subScore = subScoreOf(a.subs, key);
    const show = subScore !== null && subScore > 0 && !v.stale && !v.flagged && !v.missing && !state ? String(Math.min(subScore, 3)) : null;
    setAttr(c.root, "data-score", show);
    // The tag says in words what the colour says: STALE, or the NEWS2 points this value scores.
    const tagText = v.stale ? "STALE" : show ? `+${show}` : "";
    setText(c.tag, tagText);
    setAttr(c.tag, "data-tag", v.stale ? "stale" : show ? "score" : null);
    setHidden(c.tag, !tagText);
  }

  // sparkline: redrawn when a 10 s bucket closes or the tile's state changes (queued: see drawSparks)
  if (t.spark.due(!!state)) sparksDue.add(t);
}

function subScoreOf(subs, key) {
  const sk = CELL_SUBSCORE[key];
  return sk !== undefined && Number.isFinite(subs[sk]) ? subs[sk] : null;
}

/** A vital cell's tooltip at time `now`: what it is, how old, why not current, its NEWS2 points. */
function cellTip(t, key, now) {
  const v = cellView(t, key, now);
  const state = t.state;
  const subScore = subScoreOf(t.news2?.subscores || {}, key);
  let tip = v.missing ? "no reading" : v.flagged ? "flagged — not a clean measurement" : "";
  if (v.age !== null) tip += `${tip ? "; " : ""}measured ${fmtAge(v.age)} ago${v.stale ? " — STALE, not current" : ""}`;
  if (state && !v.missing) tip += ` — not current: ${TILE_STATE_LABEL[state]}`;
  if (subScore !== null) tip += `; NEWS2 subscore ${subScore}`;
  return tip;
}

/** A table cell's tooltip at time `now`. */
function rowTip(t, key, now) {
  const v = cellView(t, key, now);
  return v.age === null ? "no reading" : `measured ${fmtAge(v.age)} ago${v.stale ? " — STALE" : ""}`;
}

/** Tooltips name ages that move every second: each is written when the pointer (or focus) reaches it,
 *  not for every cell of every bed every second. */
function refreshTip(ev) {
  const cell = ev.target.closest?.(".vital[data-param], td[data-col]");
  if (!cell) return;
  const holder = cell.closest("[data-bed]");
  const t = holder && beds.get(holder.dataset.bed);
  if (!t) return;
  if (cell.matches(".vital")) setAttr(cell, "title", cellTip(t, cell.dataset.param, perfNow()));
  else if (["hr", "spo2", "rr", "nibp", "temp"].includes(cell.dataset.col)) setAttr(cell, "title", rowTip(t, cell.dataset.col, perfNow()));
}

/** Sparklines to redraw; at most SPARK_BUDGET a second, so the 500 that fall due when a 10 s bucket closes
 *  are spread over the following seconds instead of landing in one frame. */
const sparksDue = new Set();
const SPARK_BUDGET = 100;
let sparkBudget = SPARK_BUDGET;

function drawSparks() {
  if (viewMode !== "tiles") { sparksDue.clear(); return; }
  for (const t of sparksDue) {
    if (sparkBudget <= 0) break;
    sparksDue.delete(t);
    const dim = !!t.state;
    if (!t.spark.due(dim) || !beds.has(t.id)) continue;
    sparkBudget--;
    const d = t.dom;
    const [lo, hi, count] = t.spark.draw(d.spark, serverNow(), dim);
    const range = count ? (lo === hi ? `${Math.round(lo)}` : `${Math.round(lo)}–${Math.round(hi)}`) : "";
    setText(d.sparkRange, range);
    setAttr(d.spark, "aria-label", count ? `heart rate over the last 30 minutes: ${range} per minute` :
      "heart rate over the last 30 minutes: no values yet");
    setAttr(d.spark, "data-points", String(count));
  }
}

/**
 * Once a second, with no new data: only what time changes. An age's text is rewritten where it reads
 * differently ("12s" -> "13s"); a bed is rendered in full only when a value crossed its staleness limit
 * (its cell, badge, band and place in the order change) or its whole-tile state depends on the clock.
 */
function ageBeds(now) {
  const tiles = viewMode === "tiles";
  for (const t of beds.values()) {
    if (dirtyBeds.has(t)) continue;
    if (t.state || t.noDataAlarm) { dirtyBeds.add(t); continue; }  // "last data 2m ago"; NO DATA a moment after its alarm
    const ages = t.ages;
    if (!ages) continue;
    for (const key in ages) {
      const g = ages[key];
      if (g === null) continue;
      const age = (now - g.zeroAt) / 1000;
      if ((g.limit !== undefined && age > g.limit) !== g.stale) { dirtyBeds.add(t); break; }
      if (!tiles) continue;
      const text = fmtAge(age);
      if (text !== g.text) { g.text = text; setText(t.dom.cells[key].age, text); }
    }
  }
}

// ---------------------------------------------------------------- table mode

/** Table columns: [key, header, unit parameter, sort value]. */
const COLUMNS = [
  ["bed", "Bed", null, (t) => t.id],
  ["ward", "Ward", null, (t) => t.ward],
  ["patient", "Patient", null, (t) => t.patient?.name || ""],
  ["hr", "HR", "hr", (t) => cellNum(t, "hr")],
  ["spo2", "SpO₂", "spo2", (t) => cellNum(t, "spo2")],
  ["rr", "RR", "rr", (t) => cellNum(t, "rr")],
  ["nibp", "BP", "nibp_sys", (t) => cellNum(t, "nibp")],
  ["temp", "Temp", "temp", (t) => cellNum(t, "temp")],
  ["news2", "NEWS2", null, null],
  ["alarm", "Highest alarm", null, (t) => t.alertPrio * 1e13 + (t.topAlarm?.raised || 0)],
];

/** A cell's number for sorting (-Infinity when there is none). */
function cellNum(t, key) {
  const v = t.views?.[key];
  if (!v || v.missing || v.flagged) return -Infinity;
  const x = parseFloat(v.text);
  return Number.isFinite(x) ? x : -Infinity;
}

function createRow(t) {
  const tr = h("tr", "crow");
  tr.dataset.bed = t.id;
  tr.tabIndex = 0;
  tr.addEventListener("keydown", (ev) => {
    if ((ev.key === "Enter" || ev.key === " ") && ev.target === tr) { ev.preventDefault(); openBed(t.id); }
  });
  tr.addEventListener("click", () => openBed(t.id));
  const cells = {};
  for (const [key] of COLUMNS) {
    const td = h(key === "bed" ? "th" : "td", `c-${key}`);
    if (key === "bed") td.scope = "row";
    td.dataset.col = key;
    tr.append(td);
    cells[key] = td;
  }
  const band = h("span", "t-band");
  const num = h("span", "t-num");
  cells.news2.append(num, band);
  t.row = { tr, cells, band, num };
  return t.row;
}

function renderRow(t, a) {
  const r = t.row || createRow(t);
  const { views, state } = a;
  setText(r.cells.bed, t.id);
  setText(r.cells.ward, t.ward);
  setText(r.cells.patient, tilePatientText(t) || "—");
  setAttr(r.tr, "data-tile-state", state || null);
  setAttr(r.tr, "aria-label", `Bed ${t.id}${state ? ` (${TILE_STATE_LABEL[state]})` : ""}: open its detail`);
  for (const key of ["hr", "spo2", "rr", "nibp", "temp"]) {
    const v = views[key], td = r.cells[key];
    setText(td, v.stale && !v.missing ? `${v.text} STALE` : v.text);
    setClass(td, "stale", v.stale || !!state);
    setClass(td, "missing", v.missing && !v.flagged);
  }
  const bv = badgeView(t, a);
  setText(r.num, bv.num);
  setText(r.band, BAND_LABEL[a.band] + (bv.sub ? ` · ${bv.sub}` : ""));
  setAttr(r.cells.news2, "data-news2-band", a.band);
  setAttr(r.cells.news2, "title", bv.title);
  const top = t.topAlarm;
  const alarmText = state ? TILE_STATE_LABEL[state] + (top ? ` · ${top.priority.toUpperCase()}: ${top.title}` : "")
    : top ? `${top.priority.toUpperCase()}: ${top.title}` : "—";
  setText(r.cells.alarm, alarmText);
  setAttr(r.cells.alarm, "title", alarmText);
  setAttr(r.cells.alarm, "data-priority", top ? top.priority : null);
}

function tableHeader() {
  const thead = el.table.tHead;
  if (thead.rows[0].cells.length) return;
  for (const [key, label, unitOf, sortBy] of COLUMNS) {
    const th = h("th");
    th.scope = "col";
    th.dataset.col = key;
    const unit = unitOf ? paramUnit(unitOf) : "";
    const b = h("button", "sort-col", label);
    b.type = "button";
    if (unit) b.append(h("span", "unit", unit));
    b.addEventListener("click", () => {
      const dir = tableSort?.key === key && tableSort.dir === "desc" ? "asc" : tableSort?.key === key ? "desc"
        : (sortBy && ["bed", "ward", "patient"].includes(key) ? "asc" : "desc");
      tableSort = { key, dir };
      orderNow = true;
      scheduleFlush();
    });
    th.append(b);
    thead.rows[0].append(th);
  }
}

function compareRows(a, b) {
  if (!tableSort) return compareTiles(a, b);
  const col = COLUMNS.find((c) => c[0] === tableSort.key);
  const sign = tableSort.dir === "asc" ? 1 : -1;
  if (!col || !col[3]) return sign * riskCmp(a, b) || naturalCmp(a.id, b.id);  // NEWS2: acuity
  const va = col[3](a), vb = col[3](b);
  const c = typeof va === "string" ? naturalCmp(va, vb) : (va === vb ? 0 : va < vb ? -1 : 1);
  return sign * c || naturalCmp(a.id, b.id);
}

/** Lower risk first (so "descending" is highest risk first). */
function riskCmp(a, b) {
  return (BAND_RANK[a.band] - BAND_RANK[b.band]) || (a.score - b.score) || (a.alertPrio - b.alertPrio);
}

function renderTableSort() {
  for (const th of el.table.tHead.rows[0].cells) {
    const key = th.dataset.col;
    const on = tableSort ? tableSort.key === key : (sortMode === "risk" ? key === "news2" : sortMode === "ward" ? key === "ward" : key === "bed");
    const dir = tableSort ? tableSort.dir : sortMode === "risk" ? "desc" : "asc";
    setAttr(th, "aria-sort", on ? (dir === "asc" ? "ascending" : "descending") : null);
  }
}

function compareTiles(a, b) {
  if (sortMode === "risk") {
    return (BAND_RANK[b.band] - BAND_RANK[a.band]) || (b.score - a.score) ||
      (b.alertPrio - a.alertPrio) || naturalCmp(a.id, b.id);
  }
  if (sortMode === "ward") return naturalCmp(a.ward, b.ward) || naturalCmp(a.id, b.id);
  return naturalCmp(a.id, b.id);
}

function wardHeader(ward) {
  let hd = wardHeaders.get(ward);
  if (!hd) {
    hd = h("h3", "ward-head", `Ward ${ward || "?"}`);
    hd.dataset.ward = ward;
    wardHeaders.set(ward, hd);
  }
  return hd;
}

/** Put grid children in the wanted order, moving only nodes that are out of place. */
function arrange(container, nodes) {
  const focused = container.contains(document.activeElement) ? document.activeElement : null;
  for (let i = 0; i < nodes.length; i++) {
    const want = nodes[i];
    const at = container.children[i];
    if (at !== want) container.insertBefore(want, at || null);
  }
  while (container.children.length > nodes.length) container.lastElementChild.remove();
  // moving a node blurs what is focused inside it: a keyboard user keeps her place while live updates reorder
  if (focused && focused.isConnected && document.activeElement !== focused) focused.focus({ preventScroll: true });
}

/** Does the bed pass the band chip chosen (a band, or a whole-tile state)? */
function inBandFilter(t) {
  if (!bandFilter) return true;
  return TILE_STATE_LABEL[bandFilter] ? t.state === bandFilter : t.band === bandFilter;
}

function reorderGrid() {
  const inWard = [...beds.values()].filter((t) => !wardFilter || t.ward === wardFilter);
  const list = inWard.filter(inBandFilter);
  const table = viewMode === "table";
  el.grid.hidden = table;
  el.table.hidden = !table;
  if (table) {
    tableHeader();
    list.sort(compareRows);
    arrange(el.tbody, list.map((t) => (t.row || createRow(t)).tr));
    renderTableSort();
    if (el.grid.childElementCount) el.grid.replaceChildren();  // hidden tiles cost nothing; rebuilt on the way back
  } else {
    list.sort(compareTiles);
    const nodes = [];
    let lastWard = null;
    for (const t of list) {
      if (sortMode === "ward" && t.ward !== lastWard) {
        lastWard = t.ward;
        const hd = wardHeader(t.ward);
        setText(hd, `Ward ${t.ward || "?"} · ${list.filter((x) => x.ward === t.ward).length} beds`);
        nodes.push(hd);
      }
      nodes.push(t.dom.root);
    }
    arrange(el.grid, nodes);
    if (el.tbody.childElementCount) el.tbody.replaceChildren();
  }
  el.gridEmpty.hidden = list.length > 0;
  if (!list.length) {
    setText(el.gridEmpty, inWard.length ? `No ${FILTER_LABEL[bandFilter]} beds${wardFilter ? " in this ward" : ""}.`
      : beds.size ? "No beds in this ward." : conn.state === "live" ? "No beds reported by the hub." : "Waiting for the hub…");
  }
  // Say what is filtered, with a way back: a filter must never hide beds silently.
  el.filterNote.hidden = !bandFilter;
  if (bandFilter) {
    setText(el.filterText, `Showing ${FILTER_LABEL[bandFilter]} beds only: ${list.length} of ${inWard.length}.`);
  }
  syncWardOptions();
}

function syncWardOptions() {
  for (const t of beds.values()) if (t.ward) knownWards.add(t.ward);
  if (wardFilter) knownWards.add(wardFilter);
  const wards = [...knownWards].sort(naturalCmp);
  const have = [...el.wardFilter.options].slice(1).map((o) => o.value);
  if (have.join("\u0000") === wards.join("\u0000")) return;
  while (el.wardFilter.options.length > 1) el.wardFilter.remove(1);
  for (const w of wards) el.wardFilter.add(new Option(`Ward ${w}`, w));
  if (wardFilter && !wards.includes(wardFilter)) { /* keep selection; ward may return */ el.wardFilter.add(new Option(`Ward ${wardFilter}`, wardFilter)); }
  el.wardFilter.value = wardFilter;
}

function renderSummary() {
  const counts = Object.fromEntries(FILTER_KEYS.map((b) => [b, 0]));
  let total = 0;
  for (const t of beds.values()) {
    if (wardFilter && t.ward !== wardFilter) continue;
    total++;
    counts[t.band || "unknown"]++;
    if (t.state) counts[t.state]++;
  }
  if (!el.summary.firstChild) {
    for (const b of FILTER_KEYS) {
      const s = h("button", `sum-chip${TILE_STATE_LABEL[b] ? " sum-state" : ""}`);
      s.type = "button";
      s.dataset.band = b;
      s.setAttribute("aria-pressed", "false");
      s.addEventListener("click", () => setBandFilter(bandFilter === b ? "" : b));
      el.summary.append(s);
    }
    const tot = h("span", "sum-total");
    el.summary.append(tot);
  }
  const kids = el.summary.children;
  FILTER_KEYS.forEach((b, i) => {
    const on = bandFilter === b;
    setText(kids[i], `${FILTER_LABEL[b]} ${counts[b]}`);
    setClass(kids[i], "zero", counts[b] === 0);
    setAttr(kids[i], "aria-pressed", on ? "true" : "false");
    setAttr(kids[i], "title", on ? `Showing ${FILTER_LABEL[b]} beds only: press again to show every bed`
      : `Show only the ${counts[b]} ${FILTER_LABEL[b]} bed${counts[b] === 1 ? "" : "s"}`);
  });
  setText(kids[FILTER_KEYS.length], `${total} beds`);
}

/** Filter the census to one band (or whole-tile state) from its summary chip; "" shows every bed. */
function setBandFilter(b) {
  bandFilter = b;
  orderNow = true;
  summaryDirty = true;
  scheduleFlush();
}

// ---------------------------------------------------------------- alarm queue

/** The alarm filters the user set (the ward comes from the ward filter). */
const alarmFilter = { priority: "", category: "", mine: false };
/** bed (or subject) -> AlarmGroup: the bed's header and its alarms' list */
const groups = new Map();
let groupSerial = 0;  // ids for each group's list of parts (aria-controls of its show/hide button)
/** high-priority alarm ids already announced to screen readers (a reconnect does not repeat them) */
const announced = new Set();
let pendingAnnouncements = [];
const SOUND_REPEAT_MS = { high: 10_000, medium: 20_000 };  // a burst again while the alarm stays active
let lastBurstAt = 0;
let lastBurstPriority = "";

function createAlertRow(id) {
  const li = h("li", "alert");
  li.dataset.alertId = String(id);
  const prio = h("span", "prio");
  const title = h("div", "a-title");
  const chips = h("div", "a-chips");
  const meta = h("div", "a-meta");
  const who = h("div", "a-who");
  const err = h("div", "a-err");
  err.hidden = true;
  err.setAttribute("role", "alert");
  const ack = h("button", "ack", "Acknowledge");
  ack.type = "button";
  const silence = h("button", "silence", "Silence…");
  silence.type = "button";
  silence.setAttribute("aria-expanded", "false");
  const row1 = h("div", "a-row");
  row1.append(prio, title);
  const actions = h("div", "a-actions");
  actions.append(ack, silence);
  const form = createSilenceForm();
  li.append(row1, chips, meta, who, actions, form.root, err);
  const row = { id, data: null, pending: false, error: "", dom: { li, prio, title, chips, meta, who, err, ack, silence, form } };
  ack.addEventListener("click", () => acknowledge(row));
  silence.addEventListener("click", () => toggleSilenceForm(row, form.root.hidden));
  form.root.addEventListener("submit", (ev) => { ev.preventDefault(); silenceAlarm(row); });
  form.cancel.addEventListener("click", () => toggleSilenceForm(row, false));
  return row;
}

/** Reason and duration for a silence (the hub takes a reason of 1-200 characters and at most 15 minutes). */
function createSilenceForm() {
  const root = h("form", "silence-form");
  root.hidden = true;
  const reasonLbl = h("label", "", "Reason ");
  const reason = h("input");
  reason.name = "reason"; reason.required = true; reason.maxLength = 200;
  reason.setAttribute("list", "silence-reasons");
  reasonLbl.append(reason);
  const forLbl = h("label", "", "For ");
  const seconds = h("select");
  seconds.name = "seconds";
  for (const m of [1, 2, 5, 10, 15]) seconds.add(new Option(`${m} min`, String(m * 60), m === 2, m === 2));
  forLbl.append(seconds);
  const go = h("button", "silence-go", "Silence");
  go.type = "submit";
  const cancel = h("button", "silence-cancel", "Cancel");
  cancel.type = "button";
  root.append(reasonLbl, forLbl, go, cancel);
  return { root, reason, seconds, go, cancel };
}

function toggleSilenceForm(row, open) {
  row.dom.form.root.hidden = !open;
  row.dom.silence.setAttribute("aria-expanded", open ? "true" : "false");
  if (open) row.dom.form.reason.focus();
}

function createGroup(key) {
  const li = h("li", "bed-group");
  li.dataset.groupBed = key;
  const head = h("div", "group-head");
  head.tabIndex = -1;
  const bed = h("button", "bedlink", key);
  bed.type = "button";
  const ward = h("span", "group-ward");
  const news2 = h("span", "group-news2");
  const count = h("span", "group-count");
  const headline = h("div", "group-headline");
  const toggle = h("button", "parts-toggle");
  toggle.type = "button";
  toggle.setAttribute("aria-expanded", "false");
  const ackAll = h("button", "ack-all");
  ackAll.type = "button";
  head.append(bed, ward, news2, count, toggle, ackAll);
  const list = h("ol", "group-alarms");
  list.id = `parts-${++groupSerial}`;
  toggle.setAttribute("aria-controls", list.id);
  li.append(head, headline, list);
  const g = { key, pending: false, expanded: false, dom: { li, head, bed, ward, news2, count, headline, toggle, ackAll, list } };
  bed.addEventListener("click", () => focusBed(key));
  ackAll.addEventListener("click", () => acknowledgeBed(g));
  toggle.addEventListener("click", () => { g.expanded = !g.expanded; alertsDirty = true; scheduleFlush(); });
  return g;
}

function applyAlert(a) {
  if (!a || a.id === undefined || a.id === null || isHeld(a)) return;
  const id = String(a.id);
  let row = alerts.get(id);
  if (a.state === "resolved") {
    resolvedIds.add(id);
    if (resolvedIds.size > 10_000) resolvedIds.delete(resolvedIds.values().next().value);
    if (row) { alerts.delete(id); row.dom.li.remove(); }
    alertsDirty = true;
    bedAlertsDirty = true;
    return;
  }
  if (resolvedIds.has(id)) return;
  // Ignore an update older than what is shown (an ack response can overtake the broadcast).
  if (row && row.data && Number.isFinite(a.updated) && Number.isFinite(row.data.updated) && a.updated < row.data.updated) return;
  const wasHigh = row?.data?.priority === "high" && row.data.state === "active";
  if (!row) { row = createAlertRow(id); alerts.set(id, row); }
  row.data = a;
  if (a.state !== "active") row.error = "";
  if (a.priority === "high" && a.state === "active" && !wasHigh) noteNewHigh(a);
  alertsDirty = true;
  bedAlertsDirty = true;
}

/** A high-priority alarm appeared (or rose to high): announce it once and sound it now. */
function noteNewHigh(a) {
  const key = `${a.id}:${a.raised}:${a.priority}`;
  if (announced.has(key)) return;
  announced.add(key);
  if (announced.size > 10_000) announced.delete(announced.values().next().value);
  pendingAnnouncements.push(a);
  lastBurstAt = 0;  // sound at the next flush, whatever played before
}

function renderAnnouncements() {
  const shown = pendingAnnouncements.filter((a) => alerts.has(String(a.id)) && keepAlarm(a, currentFilter(), myTier()));
  pendingAnnouncements = [];
  if (!shown.length) return;
  const text = shown.length === 1 ? announcement(shown[0], beds.get(shown[0].bed)?.news2)
    : `${shown.length} new high-priority alarms: beds ${shown.map((a) => a.bed || a.subject).join(", ")}`;
  setText(el.announcer, text);
}

function markBedAlerts() {
  bedAlertsDirty = false;
  const per = new Map();
  const silent = new Set();  // beds whose "no data" alarm is open (active or acknowledged): the hub's own verdict
  for (const r of alerts.values()) {
    if (r.data.kind === "technical:no_data" && r.data.bed) silent.add(r.data.bed);
    if (r.data.state !== "active") continue;
    const cur = per.get(r.data.bed) || { n: 0, p: 0, top: null };
    cur.n++;
    cur.p = Math.max(cur.p, PRIORITY_RANK[r.data.priority] || 0);
    if (!cur.top || alarmOrder(r.data, cur.top) < 0) cur.top = r.data;
    per.set(r.data.bed, cur);
  }
  for (const t of beds.values()) {
    const cur = per.get(t.id) || { n: 0, p: 0, top: null };
    const top = cur.top ? { priority: cur.top.priority, title: liveTitle(cur.top, t.news2), raised: cur.top.raised } : null;
    const noData = silent.has(t.id);
    t.topAlarmData = cur.top;
    if (cur.n !== t.alertCount || cur.p !== t.alertPrio || top?.title !== t.topAlarm?.title || noData !== t.noDataAlarm) {
      t.alertCount = cur.n;
      t.alertPrio = cur.p;
      t.topAlarm = top;
      t.noDataAlarm = noData;
      dirtyBeds.add(t);
    }
  }
}

/** New bed data changes no alarm, only a NEWS2 alarm's live title: re-title the top alarm of these beds only. */
function retitleTopAlarms(list) {
  for (const b of list) {
    const t = b && beds.get(b.bed);
    if (!t || !t.topAlarmData || !t.topAlarm) continue;
    const title = liveTitle(t.topAlarmData, t.news2);
    if (title !== t.topAlarm.title) { t.topAlarm = { ...t.topAlarm, title }; dirtyBeds.add(t); }
  }
}

function renderAlertRow(r, srvNow) {
  const a = r.data, d = r.dom;
  // what the clock changes: silenced or not, the chips' minutes left, "(2m ago)"; and the live NEWS2 in the title
  const silencedNow = isSilenced(a, srvNow);
  setAttr(d.li, "data-silenced", silencedNow ? "true" : "false");
  setText(d.title, liveTitle(a, beds.get(a.bed)?.news2));
  const ago = Number.isFinite(a.raised) ? ` (${fmtAge((srvNow - a.raised) / 1000)} ago)` : "";
  if (r.shown && r.shown.data === a && r.shown.pending === r.pending && r.shown.error === r.error && !silencedNow && !r.shown.silenced) {
    setText(d.meta, r.shown.metaHead + ago + r.shown.metaTail);
    return;  // nothing else of the row depends on the time
  }
  const silenced = silencedNow ? ` · silenced by ${a.silenced_by || "?"} until ${fmtClock(a.silenced_until)}: ${a.silence_reason || ""}` : "";
  r.shown = { data: a, pending: r.pending, error: r.error, silenced: silencedNow, metaHead: `raised ${fmtClock(a.raised)}`,
    metaTail: ` · ${a.state === "active" ? "ACTIVE" : a.state.toUpperCase()}${silenced}` };
  setText(d.meta, r.shown.metaHead + ago + r.shown.metaTail);
  renderChips(d.chips, stateChips(a, srvNow));
  const prio = PRIORITY_RANK[a.priority] ? a.priority : "low";
  setAttr(d.li, "data-priority", prio);
  setAttr(d.li, "data-state", a.state);
  setAttr(d.li, "data-alert-bed", a.bed);
  setAttr(d.li, "data-escalated", isEscalated(a) ? "true" : "false");
  setAttr(d.li, "data-latched", isLatched(a) ? "true" : "false");
  setAttr(d.li, "data-tier", a.tier_role || "");
  setText(d.prio, prio.toUpperCase());
  setAttr(d.title, "title", a.detail || "");
  if (a.state === "acknowledged") {
    d.who.hidden = false;
    setText(d.who, `Acknowledged by ${a.acked_by || "unknown"}${Number.isFinite(a.acked_at) ? ` at ${fmtClock(a.acked_at)}` : ""}`);
  } else {
    d.who.hidden = true;
  }
  d.ack.hidden = a.state !== "active";
  d.ack.disabled = r.pending;
  setText(d.ack, r.pending ? "Acknowledging…" : "Acknowledge");
  setAttr(d.ack, "aria-label", `Acknowledge ${a.bed || a.subject || ""}: ${a.title || a.kind}`);
  setAttr(d.silence, "aria-label", `Silence ${a.bed || a.subject || ""}: ${a.title || a.kind}`);
  d.err.hidden = !r.error;
  setText(d.err, r.error);
}

function renderChips(box, chips) {
  const want = chips.map((c) => `${c.key}|${c.text}|${c.title}`).join("\n");
  if (box.dataset.chips === want) return;
  box.dataset.chips = want;
  box.replaceChildren(...chips.map((c) => {
    const s = h("span", "chip", c.text);
    s.dataset.chip = c.key;
    s.title = c.title;
    return s;
  }));
  box.hidden = chips.length === 0;
}

function renderGroup(g, list) {
  const head = list[0], d = g.dom;
  const active = list.filter((a) => a.state === "active").length;
  const t = beds.get(g.key);
  setAttr(d.li, "data-priority", head.priority);
  setAttr(d.li, "data-head-alert", String(head.id));
  setText(d.ward, head.ward ? `ward ${head.ward}` : "");
  const n2 = t ? news2Now(t.news2) : null;
  setText(d.news2, n2 === null ? "" : `NEWS2 ${n2}`);
  setText(d.count, `${list.length} alarm${list.length > 1 ? "s" : ""}${active < list.length ? ` · ${active} active` : ""}`);
  setText(d.headline, bedHeadline(list));
  d.toggle.hidden = list.length < 2;
  setText(d.toggle, partsToggleText(list.length, g.expanded));
  setAttr(d.toggle, "aria-expanded", g.expanded ? "true" : "false");
  setAttr(d.toggle, "aria-label", `${partsToggleText(list.length, g.expanded)} of ${g.key}`);
  d.ackAll.hidden = active < 2;
  d.ackAll.disabled = g.pending;
  setText(d.ackAll, g.pending ? "Acknowledging…" : `Acknowledge all ${active}`);
  setAttr(d.ackAll, "aria-label", `Acknowledge all ${active} active alarms of ${g.key}`);
  setAttr(d.bed, "aria-label", t ? `Show bed ${g.key} in the census` : g.key);
}

function currentFilter() {
  return { ...alarmFilter, ward: wardFilter };
}

function myTier() {
  return user ? tierOfRole(user.role) : "";
}

function renderAlerts() {
  const srvNow = serverNow();
  const filter = currentFilter(), tier = myTier();
  const shown = [...alerts.values()].filter((r) => keepAlarm(r.data, filter, tier)).map((r) => r.data).sort(alarmOrder);
  const nodes = [];
  for (const grp of groupByBed(shown)) {
    let g = groups.get(grp.key);
    if (!g) { g = createGroup(grp.key); groups.set(grp.key, g); }
    renderGroup(g, grp.alarms);
    const rows = grp.alarms.map((a) => alerts.get(String(a.id)));
    const visible = shownParts(rows.length, g.expanded);
    rows.forEach((r, i) => { renderAlertRow(r, srvNow); r.dom.li.hidden = i >= visible; });
    arrange(g.dom.list, rows.map((r) => r.dom.li));
    nodes.push(g.dom.li);
  }
  arrange(el.alertList, nodes);
  for (const [k, g] of groups) if (!g.dom.li.isConnected) groups.delete(k);
  const active = shown.filter((a) => a.state === "active").length;
  const hiddenN = alerts.size - shown.length;
  setText(el.alertCount, (shown.length ? `${active} active · ${shown.length - active} acknowledged` : "") +
    (hiddenN ? ` · ${hiddenN} hidden by filters` : ""));
  setText(el.alertsEmpty, alerts.size ? "No alarms match the filters." : "No open alarms.");
  el.alertsEmpty.hidden = shown.length > 0;
  renderAnnouncements();
  soundIfDue(shown, srvNow);
}

/** While a shown alarm is active and not silenced, sound its priority's burst, again every little while. */
function soundIfDue(shown, srvNow) {
  if (!soundOn()) return;
  const audible = shown.filter((a) => isAudible(a, srvNow));
  if (!audible.length) return;
  const prio = audible.some((a) => a.priority === "high") ? "high" : "medium";
  const now = perfNow();
  if (now - lastBurstAt < SOUND_REPEAT_MS[prio] && !(prio === "high" && lastBurstPriority !== "high")) return;
  if (playBurst(prio)) { lastBurstAt = now; lastBurstPriority = prio; }
}

/** POST one acknowledgement; returns the error text, or "" when the hub took it. */
async function postAck(row) {
  try {
    const res = await api(`/api/alerts/${encodeURIComponent(row.id)}/ack`, { method: "POST" });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (res.ok && body && body.id !== undefined) { applyAlert(body); return ""; }
    if (res.status === 409) return `Not acknowledged: ${detailText(body) || "alert already resolved"}`;
    return `Not acknowledged: hub answered ${res.status}${detailText(body) ? ` — ${detailText(body)}` : ""}`;
  } catch {
    return "Not acknowledged: hub unreachable. Try again.";
  }
}

async function acknowledge(row) {
  if (row.pending || !row.data || row.data.state !== "active") return;
  row.pending = true;
  row.error = "";
  alertsDirty = true; scheduleFlush();
  row.error = await postAck(row);
  row.pending = false;
  alertsDirty = true;
  scheduleFlush();
}

/** Acknowledge every active alarm of one bed, each as its own request (each is audited on its own). */
async function acknowledgeBed(g) {
  if (g.pending) return;
  const rows = [...alerts.values()].filter((r) => groupKey(r.data) === g.key && r.data.state === "active" && !r.pending);
  if (!rows.length) return;
  g.pending = true;
  alertsDirty = true; scheduleFlush();
  await Promise.all(rows.map((r) => acknowledge(r)));
  g.pending = false;
  alertsDirty = true; scheduleFlush();
}

async function silenceAlarm(row) {
  const f = row.dom.form;
  const reason = f.reason.value.trim();
  if (!reason) { row.error = "Not silenced: give a reason."; alertsDirty = true; scheduleFlush(); return; }
  f.go.disabled = true;
  row.error = "";
  try {
    const res = await api(`/api/alerts/${encodeURIComponent(row.id)}/silence`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reason, seconds: Number(f.seconds.value) }),
    });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (res.ok && body && body.id !== undefined) {
      applyAlert(body);
      toggleSilenceForm(row, false);
      f.reason.value = "";
    } else {
      row.error = `Not silenced: ${detailText(body) || `hub answered ${res.status}`}`;
    }
  } catch {
    row.error = "Not silenced: hub unreachable. Try again.";
  } finally {
    f.go.disabled = false;
    alertsDirty = true;
    scheduleFlush();
  }
}

function detailText(body) {
  if (!body || body.detail === undefined) return "";
  return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
}

function focusBed(id) {
  const t = id && beds.get(id);
  if (!t) return;
  const node = viewMode === "table" && t.row ? t.row.tr : t.dom.root;
  if (!node.isConnected) return;  // filtered out of the census
  node.scrollIntoView({ block: "center", behavior: "smooth" });
  node.focus({ preventScroll: true });
  node.classList.remove("flash");
  void node.offsetWidth; // restart the animation
  node.classList.add("flash");
}

/** From a tile (Enter): to the bed's alarms in the queue, if it has any. */
function openBed(id) {
  location.assign(`/bed/${encodeURIComponent(id)}`);
}

// ---------------------------------------------------------------- render loop

function scheduleFlush() {
  if (flushScheduled) return;
  flushScheduled = true;
  // Animation frames pause in hidden tabs; fall back to a timer there.
  if (document.hidden) setTimeout(flush, 250);
  else requestAnimationFrame(flush);
}

function flush() {
  flushScheduled = false;
  const now = perfNow();
  if (bedAlertsDirty) markBedAlerts();
  for (const t of dirtyBeds) renderTile(t, now);
  dirtyBeds.clear();
  if (sparksDue.size) drawSparks();
  if (orderNow || (orderDirty && now - lastOrderAt >= REORDER_MIN_MS)) {
    orderNow = orderDirty = false;
    lastOrderAt = now;
    reorderGrid();
    summaryDirty = true;
  }
  if (summaryDirty) { summaryDirty = false; renderSummary(); }
  if (alertsDirty) { alertsDirty = false; renderAlerts(); }
}

/** Once a second: advance every age, even with no traffic (only what the clock changed is written). */
function tick() {
  sparkBudget = SPARK_BUDGET;
  ageBeds(perfNow());
  alertsDirty = alerts.size > 0;
  renderConn();
  flush();
}

// ---------------------------------------------------------------- connection

function setConn(state) {
  if (conn.state === "live" && state !== "live") conn.lostAt = Date.now();
  conn.state = state;
  renderConn();
}

function renderConn() {
  let state = conn.state;
  const silentMs = perfNow() - conn.lastMsgAt;
  if (state === "live" && beds.size > 0 && silentMs > STALL_WARN_MS) state = "stalled";
  let text;
  switch (state) {
    case "live": text = "live"; break;
    case "stalled": text = `no updates for ${fmtAge(silentMs / 1000)} — data may be stale`; break;
    case "connecting": text = "connecting…"; break;
    default: {
      const wait = Math.max(0, Math.ceil((conn.retryAt - perfNow()) / 1000));
      text = `reconnecting… data may be stale${conn.retryAt && wait > 0 ? ` (retry in ${wait}s)` : ""}`;
    }
  }
  setText(el.connText, text);
  setAttr(el.conn, "data-conn", state);
  for (const s of ["live", "stalled", "connecting", "reconnecting"]) setClass(document.body, `conn-${s}`, s === state);

  const showBanner = state !== "live" && beds.size > 0;
  el.banner.hidden = !showBanner;
  if (showBanner) {
    const since = conn.lostAt ? ` since ${fmtClock(conn.lostAt)}` : "";
    setText(el.banner, state === "stalled"
      ? `The hub has sent nothing for ${fmtAge(silentMs / 1000)}. Values below are not being updated; ages keep counting.`
      : `Connection to the hub lost${since}. Values below are the last received and are not being updated; ages keep counting.`);
  }
}

/** The feed carries only the ward shown (when one is chosen): its alarms are the only ones this console confirms. */
function wsUrl() {
  const q = wardFilter ? `?ward=${encodeURIComponent(wardFilter)}` : "";
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/console${q}`;
}

function connect() {
  clearTimeout(conn.retryTimer);
  conn.retryAt = 0;
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch {
    scheduleReconnect();
    return;
  }
  conn.ws = ws;
  ws.addEventListener("message", (ev) => {
    if (conn.ws !== ws) return;
    conn.lastMsgAt = perfNow();
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    handleMessage(msg);
  });
  ws.addEventListener("close", async (ev) => {
    if (conn.ws !== ws) return;
    conn.ws = null;
    // the hub refused or ended the feed for want of a session (4401; 1008 at the handshake): renew, or sign in again
    if (ev.code === 4401 || ev.code === 1008 || (ev.code === 1006 && conn.state !== "live")) {
      if ((await renew()) === false) { toSignIn(); return; }  // null (hub unreachable): keep reconnecting
    }
    scheduleReconnect();
  });
  ws.addEventListener("error", () => { /* a close event follows */ });
}

function scheduleReconnect() {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** conn.attempt);
  const delay = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
  conn.attempt++;
  conn.retryAt = perfNow() + delay;
  setConn("reconnecting");
  conn.retryTimer = setTimeout(connect, delay);
}

function watchdog() {
  if (conn.ws && conn.ws.readyState === WebSocket.OPEN && beds.size > 0 &&
      perfNow() - conn.lastMsgAt > STALL_RECONNECT_MS) {
    const ws = conn.ws;
    conn.ws = null;
    try { ws.close(); } catch { /* ignore */ }
    scheduleReconnect();
  }
}

/** Tell the hub which alarms this console now shows: an alarm no console confirms
 *  raises a technical alarm of its own at the hub. */
/** An alarm id as the hub mints them: a UUIDv7 string. */
function isAlertId(id) {
  return typeof id === "string" && id.length > 0 && id.length <= 64;
}

function confirmDelivery(ids) {
  if (!ids.length || !conn.ws || conn.ws.readyState !== WebSocket.OPEN) return;
  try { conn.ws.send(JSON.stringify({ type: "delivered", alerts: ids })); } catch { /* the close handler reconnects */ }
}

function handleMessage(msg) {
  if (!msg || typeof msg !== "object") return;
  if (Number.isFinite(msg.now)) serverOffsetMs = msg.now - Date.now();
  switch (msg.type) {
    case "snapshot": {
      if (msg.staleness_s && typeof msg.staleness_s === "object") {
        for (const [k, v] of Object.entries(msg.staleness_s)) if (Number.isFinite(v)) STALE_AFTER_S[k] = v;
        if (Number.isFinite(msg.staleness_s.nibp_sys)) STALE_AFTER_S.nibp = msg.staleness_s.nibp_sys;
      }
      const seen = new Set();
      for (const b of msg.beds || []) { applyBed(b, msg.now, true); seen.add(b.bed); }
      for (const [id, t] of beds) {
        if (!seen.has(id)) { beds.delete(id); t.dom.root.remove(); t.row?.tr.remove(); dirtyBeds.delete(t); orderNow = true; }
      }
      for (const [id, r] of alerts) { r.dom.li.remove(); alerts.delete(id); }
      resolvedIds.clear();
      for (const a of msg.alerts || []) applyAlert(a);
      confirmDelivery((msg.alerts || []).map((a) => a.id).filter(isAlertId));
      markBedAlerts();
      orderNow = true; alertsDirty = true; summaryDirty = true;
      conn.attempt = 0;
      setConn("live");
      break;
    }
    case "beds":
      for (const b of msg.beds || []) applyBed(b, msg.now, false);
      if (alerts.size) retitleTopAlarms(msg.beds || []);
      break;
    case "alert":
      applyAlert(msg.alert);
      if (msg.alert && isAlertId(msg.alert.id)) confirmDelivery([msg.alert.id]);
      break;
    case "heartbeat": // proof of life when no bed changed; the age timer does the rest
      return;
    default:
      return;
  }
  scheduleFlush();
}

// ---------------------------------------------------------------- ward view and sound

/** Show one ward (or all, ""): the address says which, and the feed restarts with only that ward's beds and alarms. */
function showWard(ward) {
  if (ward === wardFilter) return;
  wardFilter = ward;
  const url = new URL(location.href);
  if (ward) url.searchParams.set("ward", ward); else url.searchParams.delete("ward");
  history.replaceState(null, "", url);
  orderNow = true; summaryDirty = true; alertsDirty = true;
  if (conn.ws) {
    const ws = conn.ws;
    conn.ws = null;  // its close event is ignored: this is no loss of the hub
    try { ws.close(); } catch { /* ignore */ }
    conn.attempt = 0;
    connect();
  }
  scheduleFlush();
}

/** A ward nurse sees her wards only: a ward in the address that is not hers is ignored; with one ward, that is the view. */
function chooseStartWard() {
  if (!user || user.all_wards) return;
  const mine = Array.isArray(user.wards) ? user.wards : [];
  for (const w of mine) knownWards.add(w);
  if (wardFilter && !mine.includes(wardFilter)) wardFilter = "";
  if (!wardFilter && mine.length === 1) wardFilter = mine[0];
  syncWardOptions();
}

function readView() {
  try { return localStorage.getItem(VIEW_KEY) === "table" ? "table" : "tiles"; } catch { return "tiles"; }
}

/** Tiles, or the dense table (one row per bed); the browser remembers the choice. */
function setView(mode) {
  viewMode = mode;
  try { localStorage.setItem(VIEW_KEY, mode); } catch { /* private mode: this page only */ }
  renderViewToggle();
  for (const t of beds.values()) { dirtyBeds.add(t); t.spark.drawnDim = null; }
  orderNow = true;
  scheduleFlush();
}

function renderViewToggle() {
  const table = viewMode === "table";
  setText(el.viewToggle, table ? "▦ Tiles" : "☰ Table");
  setAttr(el.viewToggle, "aria-pressed", table ? "true" : "false");
  setAttr(el.viewToggle, "title", table ? "Showing the census as a table: press for tiles" : "Show the census as a compact table, one row per bed");
  setAttr(document.body, "data-view", viewMode);
}

function renderSoundButton() {
  const on = soundOn();
  setText(el.sound, on ? "♪ Sound on" : "♪ Sound off (muted)");
  setAttr(el.sound, "aria-pressed", on ? "true" : "false");
  setAttr(el.sound, "data-sound", on ? "on" : "off");
  setAttr(el.sound, "title", on ? "Alarm sound is on: click to mute" : "Alarm sound is muted: click to turn it on");
}

// ---------------------------------------------------------------- wiring

el.sortMode.addEventListener("change", () => {
  sortMode = el.sortMode.value;
  tableSort = null;
  orderNow = true;
  scheduleFlush();
});
el.wardFilter.addEventListener("change", () => showWard(el.wardFilter.value));
el.filterClear.addEventListener("click", () => setBandFilter(""));
el.viewToggle.addEventListener("click", () => setView(viewMode === "table" ? "tiles" : "table"));
el.fPriority.addEventListener("change", () => { alarmFilter.priority = el.fPriority.value; alertsDirty = true; scheduleFlush(); });
el.fCategory.addEventListener("change", () => { alarmFilter.category = el.fCategory.value; alertsDirty = true; scheduleFlush(); });
el.fMine.addEventListener("change", () => { alarmFilter.mine = el.fMine.checked; alertsDirty = true; scheduleFlush(); });
el.sound.addEventListener("click", async () => {
  await setSound(!soundOn());
  lastBurstAt = 0;
  renderSoundButton();
  alertsDirty = true; scheduleFlush();
});
el.signOut.addEventListener("click", () => { signOut(); });
for (const box of [el.grid, el.tbody]) {
  box.addEventListener("pointerover", refreshTip);
  box.addEventListener("focusin", refreshTip);
}
document.addEventListener("visibilitychange", () => { if (!document.hidden) scheduleFlush(); });

renderConn();
renderSoundButton();
renderViewToggle();
user = await startSession(); // null: the browser is on its way to the sign-in page
if (user) {
  renderUser();
  chooseStartWard();
  try { await loadVocabulary(); } catch { /* the table's headers go without units */ }
  setInterval(() => { tick(); watchdog(); }, 1000);
  connect();
}
