// teleicu sign-in page: posts the credentials, then returns to the page that sent us here.

const form = document.getElementById("signin-form");
const error = document.getElementById("signin-error");
const button = document.getElementById("signin-button");

/** Only a path on this hub: never an absolute URL someone put in the link. */
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    error.textContent = "Enter your user name and password.";
    return;
  }
  button.disabled = true;
  error.textContent = "";
  try {
    const res = await fetch("/api/auth/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (res.ok) {
      location.assign(nextPage());
      return;
    }
    let detail = "";
    try { detail = (await res.json()).detail; } catch { /* not JSON */ }
    error.textContent = typeof detail === "string" && detail ? detail : `Sign-in failed (hub answered ${res.status}).`;
    form.password.value = "";
    form.password.focus();
  } catch {
    error.textContent = "The hub cannot be reached. Check the network and try again.";
  } finally {
    button.disabled = false;
  }
});

form.username.focus();
