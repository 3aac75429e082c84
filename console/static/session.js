// teleicu console: the signed-in session.
//
// The hub keeps the session in HttpOnly cookies (the page never sees a token):
// teleicu_session for every request, teleicu_refresh for /api/auth only. This
// module asks who is signed in, renews the session before it expires, retries a
// request once after renewing when the hub answers 401, and sends the user to
// the sign-in page when the session cannot be renewed.

const RENEW_BEFORE_MS = 2 * 60 * 1000; // renew this long before the access token expires

let renewTimer = 0;

/** Go to the sign-in page, coming back here afterwards. */
export function toSignIn() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

const RETRY_RENEW_MS = 10_000; // the hub could not be reached: try again this soon

function scheduleRenew(expiresAt, wait = undefined) {
  clearTimeout(renewTimer);
  if (wait === undefined) {
    if (!Number.isFinite(expiresAt)) return;
    wait = Math.max(10_000, expiresAt - Date.now() - RENEW_BEFORE_MS);
  }
  renewTimer = setTimeout(async () => { if ((await renew()) === false) toSignIn(); }, wait);
}

/** Trade the refresh cookie for a new session: true when it worked, false when the hub refused it (sign in again),
 *  null when the hub could not be reached (a network that comes and goes must not sign anyone out). */
export async function renew() {
  let res;
  try {
    res = await fetch("/api/auth/refresh", { method: "POST", credentials: "same-origin" });
  } catch {
    scheduleRenew(undefined, RETRY_RENEW_MS);
    return null;
  }
  if (res.status === 401) return false;
  if (!res.ok) { scheduleRenew(undefined, RETRY_RENEW_MS); return null; }
  const body = await res.json();
  scheduleRenew(body.expires_at);
  return true;
}

/** The signed-in user, renewing once if needed; null after sending the browser to the sign-in page. */
export async function startSession() {
  for (let attempt = 0; attempt < 2; attempt++) {
    let res;
    try {
      res = await fetch("/api/auth/me", { credentials: "same-origin" });
    } catch {  // the hub is not reachable yet: ask again shortly, do not sign anyone out
      await new Promise((r) => setTimeout(r, 2000));
      attempt--;
      continue;
    }
    if (res.ok) {
      const user = await res.json();
      if (attempt === 0) await renew(); // learn the expiry and start the renewal clock
      return user;
    }
    if (res.status !== 401 || (await renew()) !== true) break;
  }
  toSignIn();
  return null;
}

/** fetch for the hub's API: renews the session once on 401, then gives up to the sign-in page. */
export async function api(path, init = {}) {
  const opts = { credentials: "same-origin", ...init };
  let res = await fetch(path, opts);
  if (res.status === 401 && (await renew()) === true) res = await fetch(path, opts);
  if (res.status === 401) toSignIn();
  return res;
}

export async function signOut() {
  clearTimeout(renewTimer);
  try { await fetch("/api/auth/logout", { method: "POST", credentials: "same-origin" }); } catch { /* signed out locally anyway */ }
  location.assign("/login");
}
