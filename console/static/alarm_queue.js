// teleicu console: the alarm queue's rules, without the DOM.
//
// Pure functions the console's alarm list is drawn from: which alarms a filter
// keeps, how they group under their bed (the bed's most severe alarm heads its
// group), which states an alarm is in (silenced, escalated, latched) as words,
// and its title with the bed's live NEWS2 instead of the band edge it crossed.
// One headline per bed: the hub groups a bed's physiological alarms as one
// deterioration (alerts/headline.py: `group`, `headline`, `group_head` on each
// alarm); the queue shows that headline and the bed's most urgent alarm, with
// the other parts behind a "show" button.

export const PRIORITY_RANK = { high: 3, medium: 2, low: 1 };

/** The signed-in role -> the escalation tier role the hub names (alerts/lifecycle.py tiers). */
const TIER_OF_ROLE = { ward_nurse: "bedside_nurse", teleicu_nurse: "teleicu_nurse", intensivist: "intensivist" };

export const TIER_LABEL = { bedside_nurse: "bedside nurse", teleicu_nurse: "tele-ICU nurse", intensivist: "intensivist" };

export function tierOfRole(role) {
  return TIER_OF_ROLE[role] || "";
}

/** Most urgent first: active before acknowledged, then priority, then the newest. */
export function alarmOrder(a, b) {
  const sa = a.state === "active" ? 1 : 0, sb = b.state === "active" ? 1 : 0;
  return (sb - sa) ||
    ((PRIORITY_RANK[b.priority] || 0) - (PRIORITY_RANK[a.priority] || 0)) ||
    ((b.raised || 0) - (a.raised || 0)) ||
    (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);  // ids are UUIDv7: later ids sort higher
}

/**
 * Does alarm `a` pass the filter? `f`: {priority: "" | "high" | "medium" (and above),
 * category: "" | "physiological" | "technical", mine: bool, ward: ""}; `myTier`: the user's tier role.
 */
export function keepAlarm(a, f, myTier) {
  if (f.ward && a.ward && a.ward !== f.ward) return false;
  if (f.priority && (PRIORITY_RANK[a.priority] || 0) < PRIORITY_RANK[f.priority]) return false;
  if (f.category && a.category !== f.category) return false;
  if (f.mine && !(myTier && a.tier > 0 && a.tier_role === myTier)) return false;
  return true;
}

/** The group an alarm belongs to: its bed, or its subject (an edge agent, the hub) when it has none. */
export function groupKey(a) {
  return a.bed || a.subject || "hub";
}

/** Alarms (already sorted by alarmOrder) -> [{key, alarms}], groups ordered by their head alarm. */
export function groupByBed(sorted) {
  const groups = new Map();
  for (const a of sorted) {
    const k = groupKey(a);
    if (!groups.has(k)) groups.set(k, { key: k, alarms: [] });
    groups.get(k).alarms.push(a);
  }
  return [...groups.values()];  // insertion order follows each group's first (= most severe) alarm
}

/** A held alarm (possible artefact, alerts/artefact.py) is audited at the hub but never shown or sounded. */
export function isHeld(a) {
  return a.state === "held";
}

/**
 * The headline of one bed's alarms (sorted by alarmOrder): the hub's headline of the bed's physiological
 * group when one of them is shown, else the first alarm's own headline or title.
 */
export function bedHeadline(sorted) {
  if (!sorted.length) return "";
  const physio = sorted.find((a) => a.category !== "technical" && a.headline);
  if (physio) return physio.headline;
  return sorted[0].headline || sorted[0].title || sorted[0].kind || "alarm";
}

/** How many of a bed's `n` alarms show: all when its parts are expanded, else its most urgent one. */
export function shownParts(n, expanded) {
  return expanded ? n : Math.min(n, 1);
}

/** The words of the button that shows or hides a bed's other alarms. */
export function partsToggleText(n, expanded) {
  const more = n - 1;
  return expanded ? `Hide ${more} other alarm${more > 1 ? "s" : ""}` : `Show ${more} other alarm${more > 1 ? "s" : ""}`;
}

export function isSilenced(a, now) {
  return Number.isFinite(a.silenced_until) && a.silenced_until > now;
}

export function isEscalated(a) {
  return a.tier > 0 && !!a.tier_role;
}

export function isLatched(a) {
  return a.condition === false;
}

/** Does this alarm call for a sound: active, not silenced, at high or medium priority. */
export function isAudible(a, now) {
  return a.state === "active" && !isSilenced(a, now) && (a.priority === "high" || a.priority === "medium");
}

function minutesLeft(until, now) {
  const m = Math.ceil((until - now) / 60000);
  return m <= 1 ? "under 1 min" : `${m} min`;
}

/** The alarm's states as [{key, text, title}]: shown as labelled chips, never by colour alone. */
export function stateChips(a, now) {
  const chips = [];
  if (a.category === "technical") chips.push({ key: "technical", text: "⚙ TECHNICAL", title: "a technical alarm: equipment or data, not the patient" });
  if (isSilenced(a, now)) {
    chips.push({ key: "silenced", text: `SILENCED ${minutesLeft(a.silenced_until, now)}`,
      title: `silenced by ${a.silenced_by || "?"}: ${a.silence_reason || ""}` });
  }
  if (isEscalated(a)) {
    chips.push({ key: "escalated", text: `↑ ESCALATED to ${TIER_LABEL[a.tier_role] || a.tier_role.replace(/_/g, " ")}`,
      title: "nobody acknowledged it in time" });
  }
  if (isLatched(a)) chips.push({ key: "latched", text: "LATCHED", title: "the condition has cleared; the alarm stays until acknowledged" });
  return chips;
}

/** What the bed's NEWS2 is now, as written: "9", "≥5 (incomplete)", or null when unknown. */
export function news2Now(news2) {
  if (!news2) return null;
  if (!news2.incomplete && Number.isFinite(news2.total)) return String(news2.total);
  if (Number.isFinite(news2.partial) && news2.partial > 0) return `≥${news2.partial} (incomplete)`;
  return null;
}

/**
 * The alarm's title with live values where the hub's title is frozen: a NEWS2 band alarm names the
 * band edge it crossed ("NEWS2 ≥7: high clinical risk"); the console shows the score now beside it
 * ("NEWS2 9 · high clinical risk (≥7)").
 */
export function liveTitle(a, news2) {
  const title = a.title || a.kind || "alarm";
  const now = news2Now(news2);
  if (a.kind !== "news2" || now === null) return title;
  const m = /^NEWS2 (≥\s?\d+):\s*(.*)$/.exec(title);
  return m ? `NEWS2 ${now} · ${m[2]} (${m[1]})` : title;
}

/** The words a screen reader announces for a new high-priority alarm. */
export function announcement(a, news2) {
  const where = a.bed ? `bed ${a.bed}${a.ward ? `, ward ${a.ward}` : ""}` : (a.subject || "the hub");
  return `High-priority alarm, ${where}: ${liveTitle(a, news2)}`;
}
