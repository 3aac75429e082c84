// The patient's locker page: sign in with a texted code, then records, consent requests, share links and the access log.
// Plain DOM (textContent only: nothing the server sends is parsed as HTML); the session is an HttpOnly cookie.

const $ = (id) => document.getElementById(id);
let mobile = "";

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

async function api(path, body, method) {
  const init = {method: method || (body === undefined ? "GET" : "POST"), headers: {}, credentials: "same-origin"};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && !path.startsWith("/api/patient/session")) showSignIn("Your session has ended: sign in again.");
  if (!r.ok) throw new Error(data.detail || `the locker answered ${r.status}`);
  return data;
}

const when = (iso) => new Date(iso).toLocaleString([], {dateStyle: "medium", timeStyle: "short"});

function showSignIn(message) {
  $("locker").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
}

async function sendCode(ev) {
  ev.preventDefault();
  $("signin-error").textContent = "";
  mobile = $("mobile").value.trim();
  if (!mobile) { $("signin-error").textContent = "Type your mobile number."; return; }
  try {
    const r = await api("/api/patient/code", {mobile});
    $("signin-status").textContent = r.detail;
    $("session-form").hidden = false;
    $("code").focus();
  } catch (e) { $("signin-error").textContent = e.message; }
}

async function signIn(ev) {
  ev.preventDefault();
  $("signin-error").textContent = "";
  try {
    await api("/api/patient/session", {mobile, code: $("code").value.trim()});
    $("code").value = "";
    $("session-form").hidden = true;
    $("signin-status").textContent = "";
    await showLocker();
  } catch (e) { $("signin-error").textContent = e.message; }
}

async function showLocker() {
  const me = await api("/api/patient/me");
  $("who").textContent = `${me.name || "Patient"}${me.abha ? " · ABHA " + me.abha : ""}`;
  $("signin").hidden = true;
  $("locker").hidden = false;
  $("signout").hidden = false;
  await refresh();
  $("records-title").focus?.();
}

async function refresh() {
  $("error").textContent = "";
  try {
    const [recs, cons, links, log] = await Promise.all([api("/api/patient/records"), api("/api/patient/consents"),
      api("/api/patient/share-links"), api("/api/patient/access-log")]);
    drawRecords(recs.records);
    drawConsents(cons.consents);
    drawLinks(links.links);
    drawLog(log.entries);
  } catch (e) { $("error").textContent = e.message; }
}

function guarded(fn) {
  return async (ev) => {
    ev.currentTarget.disabled = true;
    try { await fn(); await refresh(); } catch (e) { $("error").textContent = e.message; }
  };
}

function drawRecords(records) {
  $("records-empty").hidden = records.length > 0;
  $("records").replaceChildren(...records.map((r) => el("li", {class: "card", "data-record": r.record_id},
    el("h3", {text: r.title}),
    el("p", {text: `${r.type} · ${r.date}`}),
    el("p", {class: "muted", text: r.facility}),
    el("div", {class: "actions"},
      el("button", {type: "button", text: "Open", "aria-label": `Open ${r.title} of ${r.date}`, onclick: () => openRecord(r)}),
      el("button", {type: "button", class: "secondary", text: "Share", "aria-label": `Make a share link to ${r.title} of ${r.date}`,
        onclick: guarded(() => api("/api/patient/share-links", {record_id: r.record_id, minutes: 60}))})))));
}

async function openRecord(r) {
  try {
    const data = await api(`/api/patient/records/${encodeURIComponent(r.record_id)}`);
    const rows = [["Type", data.type], ["Date", data.date], ["From", data.facility], ["Record id", data.record_id]];
    $("viewer-title").textContent = data.title;
    $("viewer-details").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {text: v})]));
    $("viewer-pdf").hidden = !data.has_pdf;
    $("viewer-pdf").href = `/api/patient/records/${encodeURIComponent(r.record_id)}?format=pdf`;
    $("viewer-fhir-box").hidden = !data.bundle;
    $("viewer-fhir").textContent = data.bundle ? JSON.stringify(data.bundle, null, 2) : "";
    $("viewer").hidden = false;
    $("viewer").focus();
    await refresh();
  } catch (e) { $("error").textContent = e.message; }
}

const PURPOSE = {CAREMGT: "care management", BTG: "an emergency (break the glass)", PUBHLTH: "public health",
  HPAYMT: "payment", DSRCH: "research", PATRQT: "your own request"};

function drawConsents(consents) {
  $("consents-empty").hidden = consents.length > 0;
  $("consents").replaceChildren(...consents.map((c) => {
    const act = (action, label, cls) => el("button", {type: "button", class: cls, text: label,
      "aria-label": `${label} the request of ${c.requester.name}`,
      onclick: guarded(() => api(`/api/patient/consents/${encodeURIComponent(c.consent_id)}/${action}`, {}))});
    const buttons = c.state === "REQUESTED" ? [act("grant", "Grant", ""), act("deny", "Deny", "danger")]
      : c.state === "GRANTED" ? [act("revoke", "Revoke", "danger")] : [];
    return el("li", {class: "card", "data-consent": c.consent_id, "data-state": c.state},
      el("h3", {text: `${c.requester.name} `}, el("span", {class: `badge state-${c.state}`, text: c.state.toLowerCase()})),
      el("p", {text: `For ${PURPOSE[c.purpose] || c.purpose}: ${c.types.join(", ")} dated ${c.date_from} to ${c.date_to}`}),
      el("p", {class: "muted", text: `Access (${c.mode.toLowerCase()}) until ${when(c.expires_at)}`}),
      buttons.length ? el("div", {class: "actions"}, ...buttons) : null);
  }));
}

function drawLinks(links) {
  $("links-empty").hidden = links.length > 0;
  $("links").replaceChildren(...links.map((l) => el("li", {class: "card", "data-link": l.link_id, "data-state": l.state},
    el("h3", {text: `Record ${l.record_id} `}, el("span", {class: `badge state-${l.state}`, text: l.state})),
    l.state === "active" ? el("img", {class: "qr", src: l.qr_svg, alt: `QR code of the share link to record ${l.record_id}`}) : null,
    el("p", {class: "url", text: l.url}),
    el("p", {class: "muted", text: `Until ${when(l.expires_at)}`}),
    l.state === "active" ? el("div", {class: "actions"}, el("button", {type: "button", class: "danger", text: "Revoke link",
      "aria-label": `Revoke the share link to record ${l.record_id}`,
      onclick: guarded(() => api(`/api/patient/share-links/${encodeURIComponent(l.link_id)}/revoke`, {}))})) : null)));
}

const ACTION = {"record.fetch": "fetched a record", "record.open": "opened a record", "share.view": "opened a share link",
  "share.create": "made a share link", "share.revoke": "revoked a share link", "consent.request": "asked for consent",
  "consent.grant": "granted consent", "consent.deny": "denied consent", "consent.revoke": "revoked consent",
  "consent.expire": "consent expired", "session.start": "signed in"};

function drawLog(entries) {
  $("log").tBodies[0].replaceChildren(...entries.map((e) => el("tr", {},
    el("td", {text: when(e.at)}),
    el("td", {text: e.actor_kind === "patient" ? "You" : e.actor}),
    el("td", {text: `${ACTION[e.action] || e.action}${e.record_id ? " · " + e.record_id : ""}`}),
    el("td", {class: e.outcome, text: e.outcome === "refused" ? `refused: ${e.reason}` : "allowed"}))));
}

async function signOut() {
  await api("/api/patient/signout", {}).catch(() => {});
  showSignIn("");
}

$("code-form").addEventListener("submit", sendCode);
$("session-form").addEventListener("submit", signIn);
$("signout").addEventListener("click", signOut);
$("viewer-close").addEventListener("click", () => { $("viewer").hidden = true; });

// Already signed in (the cookie)? Show the locker; otherwise the sign-in form.
fetch("/api/patient/me", {credentials: "same-origin"}).then((r) => (r.ok ? showLocker() : showSignIn(""))).catch(() => showSignIn(""));
