// The state programme's KPI pages: /kpi (a state: each facility and the state's total) and /kpi/facility/<id>.
//
// Signing in goes through this service (POST /api/kpi/signin asks the hub); the hub's bearer token is kept for the
// tab (sessionStorage) and sent with every call. Every figure is the API's (GET /api/kpi); the page only formats it,
// and shows each KPI's definition as the API words it. The CSV is fetched with the token and saved from memory.

const TOKEN = "teleicu_kpi_token";
const USER = "teleicu_kpi_user";
const $ = (id) => document.getElementById(id);
const facilityId = (() => {
  const m = location.pathname.match(/^\/kpi\/facility\/([^/]+)$/);
  return m ? decodeURIComponent(m[1]) : null;
})();

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  return e;
}

// One rule for every figure (the browser test applies the same): no value is "—"; a count is whole; per cent and
// minutes to one decimal; rates and days to two.
export function fmt(kpi) {
  const v = kpi.value;
  if (v === null || v === undefined) return "—";
  if (kpi.unit === "count") return String(Math.round(v));
  if (kpi.unit === "%") return `${v.toFixed(1)} %`;
  if (kpi.unit === "min") return `${v.toFixed(1)} min`;
  return v.toFixed(2);
}

function part(x) {
  if (x === null || x === undefined) return "—";
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}

class SignInNeeded extends Error {}

async function api(path, init = {}) {
  const token = sessionStorage.getItem(TOKEN);
  if (!token) throw new SignInNeeded();
  const r = await fetch(path, {...init, headers: {...(init.headers || {}), Authorization: `Bearer ${token}`}});
  if (r.status === 401) {
    sessionStorage.removeItem(TOKEN);
    throw new SignInNeeded();
  }
  if (!r.ok) {
    let detail = `HTTP ${r.status}`;
    try { detail = (await r.json()).detail || detail; } catch (_e) { /* not JSON */ }
    throw new Error(detail);
  }
  return r;
}

function showSignIn(message) {
  $("dashboard").hidden = true;
  $("signout").hidden = true;
  $("user-name").textContent = "";
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("username").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  $("signin-error").textContent = "";
  const body = JSON.stringify({username: $("username").value, password: $("password").value});
  try {
    const r = await fetch("/api/kpi/signin", {method: "POST", headers: {"Content-Type": "application/json"}, body});
    const d = await r.json();
    if (!r.ok) { $("signin-error").textContent = d.detail || `HTTP ${r.status}`; return; }
    sessionStorage.setItem(TOKEN, d.access_token);
    sessionStorage.setItem(USER, d.user.display_name || d.user.username);
    $("password").value = "";
    await start();
  } catch (e) {
    $("signin-error").textContent = `Cannot sign in: ${e.message}`;
  }
}

async function signOut() {
  try { await api("/api/kpi/signout", {method: "POST"}); } catch (_e) { /* signed out either way */ }
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(USER);
  showSignIn("You are signed out.");
}

function query() {
  const q = new URLSearchParams();
  if (facilityId) q.set("facility", facilityId); else q.set("state", $("state").value);
  q.set("from", $("from").value);
  q.set("to", $("to").value);
  return q;
}

function renderDefinitions(kpis) {
  $("definitions").replaceChildren(...kpis.flatMap((k) => [el("dt", {}, `${k.label} (${k.unit})`), el("dd", {"data-definition": k.key}, k.definition)]));
}

function cell(tag, kpi, facility) {
  const c = el(tag, {"data-kpi": kpi.key, "data-facility": facility, "data-value": kpi.value === null ? "" : String(kpi.value),
                     title: `${part(kpi.numerator)} ÷ ${part(kpi.denominator)}`}, fmt(kpi));
  if (kpi.value === null) c.classList.add("none");
  return c;
}

function renderState(d) {
  const first = d.total.kpis;
  $("kpi-head").replaceChildren(el("th", {scope: "col"}, "Facility"), el("th", {scope: "col"}, "District"),
    ...first.map((k) => { const th = el("th", {scope: "col"}, k.label); th.append(el("span", {class: "unit"}, k.unit)); return th; }));
  const range = `from=${encodeURIComponent(d.window.from)}&to=${encodeURIComponent(d.window.to)}`;
  $("kpi-rows").replaceChildren(...d.facilities.map((f) => {
    const tr = el("tr", {"data-facility": f.facility.facility_id});
    const th = el("th", {scope: "row"});
    th.append(el("a", {href: `/kpi/facility/${encodeURIComponent(f.facility.facility_id)}?${range}`}, f.facility.name));
    tr.append(th, el("td", {class: "name"}, f.facility.district), ...f.kpis.map((k) => cell("td", k, f.facility.facility_id)));
    return tr;
  }));
  const total = el("tr", {"data-facility": "(state total)"});
  total.append(el("th", {scope: "row"}, `${d.state}: all ${d.total.facilities} facilities`), el("td", {class: "name"}, ""),
               ...first.map((k) => cell("td", k, "(state total)")));
  $("kpi-total").replaceChildren(total);
  $("table-caption").textContent = `KPIs of ${d.state}'s facilities, ${d.window.from} to ${d.window.to}`;
  renderDefinitions(first);
}

function renderFacility(d) {
  const f = d.facility;
  $("title").textContent = `${f.name}: ICU KPIs`;
  document.title = `${f.name}: ICU KPIs`;
  $("back-link").href = `/kpi?state=${encodeURIComponent(f.state)}&from=${encodeURIComponent(d.window.from)}&to=${encodeURIComponent(d.window.to)}`;
  $("back-link").textContent = `← All facilities of ${f.state}`;
  $("kpi-cards").replaceChildren(...d.kpis.map((k) => {
    const li = el("li");
    li.append(el("h3", {}, k.label), cell("p", k, f.facility_id));
    li.lastChild.classList.add("figure");
    li.append(el("p", {class: "parts"}, `${part(k.numerator)} ÷ ${part(k.denominator)}`), el("p", {class: "def"}, k.definition));
    return li;
  }));
  renderDefinitions(d.kpis);
}

async function show(ev) {
  if (ev) ev.preventDefault();
  const q = query();
  $("status").textContent = "Loading…";
  try {
    const d = await (await api(`/api/kpi?${q}`)).json();
    history.replaceState(null, "", `${location.pathname}?${q}`);
    const w = d.window;
    $("window").textContent = `${w.from} to ${w.to} (${w.tz}), ${w.complete ? "complete days" : "up to now"}: ` +
      `${w.hours.toFixed(1)} hours. Figures as of ${new Date(d.as_of).toLocaleString("en-IN", {timeZone: w.tz})}.`;
    if (facilityId) renderFacility(d); else renderState(d);
    $("status").textContent = "Up to date";
    document.body.dataset.loaded = `${q}`;
  } catch (e) {
    if (e instanceof SignInNeeded) { showSignIn("Your session has ended: sign in again."); return; }
    $("status").textContent = `Could not load the KPIs: ${e.message}`;
  }
}

async function downloadCsv() {
  try {
    const r = await api(`/api/kpi.csv?${query()}`);
    const name = (r.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
    const url = URL.createObjectURL(await r.blob());
    const a = el("a", {href: url, download: name ? name[1] : "kpi.csv"});
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (e) {
    if (e instanceof SignInNeeded) { showSignIn("Your session has ended: sign in again."); return; }
    $("status").textContent = `Could not make the CSV: ${e.message}`;
  }
}

async function start() {
  let states;
  try {
    states = await (await api("/api/kpi/states")).json();
  } catch (e) {
    if (e instanceof SignInNeeded) { showSignIn(""); return; }
    $("status").textContent = `Could not load the facilities: ${e.message}`;
    return;
  }
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("signout").hidden = false;
  $("user-name").textContent = sessionStorage.getItem(USER) || "";
  const params = new URLSearchParams(location.search);
  const today = new Date(`${states.today}T00:00:00Z`);
  const weekAgo = new Date(today.getTime() - 6 * 86_400_000).toISOString().slice(0, 10);
  $("from").value = params.get("from") || weekAgo;
  $("to").value = params.get("to") || states.today;
  $("state").replaceChildren(...states.states.map((s) => el("option", {value: s.state}, `${s.state} (${s.facilities.length})`)));
  if (params.get("state")) $("state").value = params.get("state");
  $("state-field").hidden = Boolean(facilityId);
  $("back").hidden = !facilityId;
  $("state-view").hidden = Boolean(facilityId);
  $("facility-view").hidden = !facilityId;
  if (!states.states.length) { $("status").textContent = "The registry has no facilities yet."; return; }
  await show();
}

$("signin-form").addEventListener("submit", signIn);
$("signout").addEventListener("click", signOut);
$("filters").addEventListener("submit", show);
$("state").addEventListener("change", () => show());
$("csv").addEventListener("click", downloadCsv);
start();
