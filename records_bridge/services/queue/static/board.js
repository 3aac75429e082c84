// teleicu OPD token board: the number called at each counter, live over server-sent events.
//
// The page's URL carries the facility and its board key (/board/<facility>?key=qb_…); the events
// come from /board/<facility>/events with the same key. Each event is the whole board (counters,
// latest calls); a call newer than the last one shown is highlighted and, once sound is on, chimed.
// Only counter names and token numbers are ever shown.

import { chime, setTone, toneOn } from "./board_tone.js";

const facility = decodeURIComponent(location.pathname.split("/")[2] || "");
const key = new URLSearchParams(location.search).get("key") || "";
const base = `/board/${encodeURIComponent(facility)}`;
let lastCall = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render(state) {
  document.getElementById("facility").textContent = `${state.facility}: tokens`;
  document.title = `${state.facility}: token board`;
  const newest = state.calls.length ? state.calls[0] : null;
  const fresh = newest && lastCall !== null && newest.id > lastCall;
  const counters = document.getElementById("counters");
  counters.replaceChildren(...state.counters.map((c) => {
    const li = el("li");
    li.dataset.counter = c.id;
    li.append(el("span", "counter-name", c.name));
    li.append(c.number ? el("span", "counter-number", c.number) : el("span", "counter-number idle", "—"));
    if (newest && c.number === newest.number && c.name === newest.counter) li.classList.add("fresh");  // the latest call
    return li;
  }));
  const calls = document.getElementById("calls");
  calls.replaceChildren(...state.calls.map((c) => {
    const li = el("li");
    li.append(el("span", "n", c.number), el("span", "", c.counter));
    return li;
  }));
  if (newest) {
    if (fresh) chime();
    lastCall = newest.id;
    document.body.dataset.lastCall = String(newest.id);
  } else if (lastCall === null) {
    lastCall = 0;
  }
}

function connect() {
  const conn = document.getElementById("conn");
  const source = new EventSource(`${base}/events?key=${encodeURIComponent(key)}`);
  source.addEventListener("board", (ev) => {
    render(JSON.parse(ev.data));
    conn.dataset.conn = "live";
    conn.textContent = "Live";
  });
  source.onerror = () => {
    conn.dataset.conn = "reconnecting";
    conn.textContent = "Reconnecting…";
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("sound");
  button.addEventListener("click", async () => {
    const now = await setTone(!toneOn());
    button.setAttribute("aria-pressed", String(now));
    button.textContent = now ? "Sound on (click to mute)" : "Turn sound on";
  });
  connect();
});
