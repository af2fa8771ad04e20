// The invitation page (/portal/invite#<token>): the invited peer chooses a password, which
// creates its portal login and signs it in, then goes on to the portal. The token travels in
// the fragment, so it never reaches a server log or a Referer header, and it leaves the
// address bar as soon as it is read.

import { api, ApiError } from "./api.js";
import { brandMark } from "./dom.js";
import { clearErrors, markInvalid, setAlert, showErrors } from "./forms.js";
import { guardAgainstBack } from "./secret.js";

const form = document.getElementById("invite-form");
const alert = document.getElementById("invite-alert");
const submit = document.getElementById("invite-submit");
const password = document.getElementById("invite-password");
const confirm = document.getElementById("invite-confirm");

document.getElementById("brand").prepend(brandMark());

let token = "";
let refused = false;

/**
 * Takes the token out of the address (URL-safe base64: nothing in it needs decoding) and
 * drops it from the address bar and the history entry at once, so it is not left in the
 * browser's history, shown over a shoulder or copied along with the address.
 */
function readToken() {
  const fromHash = window.location.hash.replace(/^#/, "").trim();
  if (window.location.hash) {
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return fromHash;
}

function refuse(text) {
  refused = true;
  setAlert(alert, text);
  for (const control of form.elements) control.disabled = true;
}

/** Starts over with the token in the address: at load, and when another link is opened here. */
function start() {
  token = readToken();
  refused = false;
  clearErrors(form, alert);
  for (const control of form.elements) control.disabled = false;
  if (!token) {
    refuse("This link is incomplete: it should end in # and a long code. Open the whole link you were sent.");
    return;
  }
  password.focus();
}

async function accept(event) {
  event.preventDefault();
  clearErrors(form, alert);
  if (!password.value) {
    markInvalid(password, "is required").focus();
    return;
  }
  if (password.value !== confirm.value) {
    markInvalid(confirm, "does not match the password").focus();
    return;
  }
  submit.disabled = true;
  submit.setAttribute("aria-busy", "true");
  try {
    await api("/api/invite/accept", { method: "POST", body: { token, password: password.value }, redirect: false });
    // Replace, so Back does not return to a link that is used up.
    window.location.replace("/portal");
    return;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.code === "invalid_invitation") {
      refuse("This invitation is unknown, already used or expired. Ask the cell's owner for a new link.");
      return;
    }
    showErrors(form, error, alert);
  } finally {
    submit.removeAttribute("aria-busy");
    submit.disabled = refused;
  }
}

form.addEventListener("submit", accept);
// Another invitation link pasted into this tab changes only the fragment: no new page load.
window.addEventListener("hashchange", () => {
  if (window.location.hash.replace(/^#/, "").trim()) start();
});
guardAgainstBack();
start();
