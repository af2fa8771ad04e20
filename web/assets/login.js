// The sign-in page: POST /api/auth/login, then the admin app (or, for a peer, its portal).

import { api, ApiError } from "./api.js";
import { brandMark } from "./dom.js";
import { clearErrors, markInvalid, setAlert, showErrors } from "./forms.js";

const form = document.getElementById("login-form");
const alert = document.getElementById("login-alert");
const submit = document.getElementById("login-submit");
const username = document.getElementById("username");
const password = document.getElementById("password");

document.getElementById("brand").prepend(brandMark());

let throttledUntil = 0;

/** Where a signed-in user belongs: peers have their portal, the owner the admin app. */
function home(user) {
  return user && user.role === "peer" ? "/portal" : "/";
}

/** After a 429 the button stays disabled, counting down, until the server will listen again. */
function throttle(seconds) {
  throttledUntil = Date.now() + seconds * 1000;
  submit.disabled = true;
  const tick = () => {
    const left = Math.ceil((throttledUntil - Date.now()) / 1000);
    if (left <= 0) {
      submit.disabled = false;
      submit.textContent = "Sign in";
      setAlert(alert, "");
      return;
    }
    submit.textContent = `Try again in ${left} s`;
    setTimeout(tick, 1000);
  };
  setAlert(alert, `Too many failed attempts. Wait ${seconds} seconds before trying again.`);
  tick();
}

async function signIn(event) {
  event.preventDefault();
  clearErrors(form, alert);
  let missing = null;
  for (const input of [username, password]) {
    if (!input.value.trim()) {
      missing = missing || markInvalid(input, "is required");
    }
  }
  if (missing) {
    missing.focus();
    return;
  }
  submit.disabled = true;
  submit.setAttribute("aria-busy", "true");
  try {
    const answer = await api("/api/auth/login", {
      method: "POST",
      body: { username: username.value.trim(), password: password.value },
      redirect: false,
    });
    window.location.assign(home(answer.user));
    return;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 429) {
      throttle(error.retryAfter || 60);
    } else if (error.code === "invalid_credentials") {
      setAlert(alert, "Wrong username or password.");
      password.value = "";
      password.focus();
    } else {
      showErrors(form, error, alert);
    }
  } finally {
    submit.removeAttribute("aria-busy");
    if (Date.now() >= throttledUntil) {
      submit.disabled = false;
    }
  }
}

async function start() {
  // Before setup there is nobody to sign in as; a signed-in visitor has nothing to do here.
  try {
    const status = await api("/api/setup/status", { redirect: false });
    if (!status.complete) {
      window.location.replace("/setup");
      return;
    }
    const me = await api("/api/auth/me", { redirect: false });
    window.location.replace(home(me.user));
    return;
  } catch (error) {
    if (error instanceof ApiError && error.status === 0) {
      setAlert(alert, error.message);
    }
  }
  username.focus();
}

form.addEventListener("submit", signIn);
start();
