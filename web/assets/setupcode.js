// The wizard's first screen: the setup code that proves this browser is the cell's owner's,
// and where on the machine to find it. A right code binds the wizard to this session.

import { ApiError } from "./api.js";
import { busy, h } from "./dom.js";
import { alertRegion, clearErrors, field, markInvalid, setAlert, showErrors } from "./forms.js";

/** After a 429 the button stays disabled, counting down, until the server will listen again. */
function holdOff(submit, alert, seconds) {
  const until = Date.now() + seconds * 1000;
  submit.disabled = true;
  setAlert(alert, `Too many wrong codes from this address. Wait ${seconds} seconds before trying again.`);
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      submit.disabled = false;
      submit.textContent = "Continue";
      setAlert(alert, "");
      return;
    }
    submit.textContent = `Try again in ${left} s`;
    setTimeout(tick, 1000);
  };
  tick();
}

function place(...content) {
  return h("li", {}, ...content);
}

/**
 * The page that asks for the setup code, which only someone who can read picd's state directory
 * or its log (the cell's owner, on the machine) has. `api` makes the claim; `onClaimed` gets its
 * answer (`csrf_token`, `current_step`).
 */
export function codePage({ api, onClaimed }) {
  const alert = alertRegion("claim-alert");
  const code = field({
    id: "setup-code",
    name: "token",
    label: "Setup code",
    autocomplete: "one-time-code",
    hint: "Seven groups of four letters and digits. Case, spaces and dashes do not matter.",
  });
  const input = code.querySelector("input");
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "claim-submit" }, "Continue");
  const form = h(
    "form",
    { id: "claim-form", novalidate: true },
    code,
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    if (!input.value.trim()) {
      markInvalid(input, "is required").focus();
      return;
    }
    await busy(submit, async () => {
      try {
        const answer = await api("/api/setup/claim", { method: "POST", body: { token: input.value } });
        await onClaimed(answer);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.code === "setup_complete") {
          window.location.assign("/");
        } else if (error.code === "invalid_setup_token") {
          markInvalid(input, "is wrong: check it and try again").focus();
        } else if (error.status === 429) {
          // busy() re-enables the button when the call returns; the countdown runs after it.
          setTimeout(() => holdOff(submit, alert, error.retryAfter || 60));
        } else {
          showErrors(form, error, alert);
        }
      }
    });
  });
  const element = h(
    "section",
    { "aria-labelledby": "claim-title" },
    h("h1", { class: "step-title", id: "claim-title", tabindex: "-1" }, "Enter the setup code"),
    h(
      "p",
      { class: "lead" },
      "Only the cell's owner may set it up. When picd started, it made a one-time setup code that only someone with access to the cell's machine can read.",
    ),
    alert,
    h(
      "div",
      { class: "claim-where" },
      h("h2", {}, "Where to find it"),
      h(
        "ul",
        {},
        place("On the cell's machine, run ", h("code", {}, "sudo picd setup token"), "."),
        place(
          "Or read the file ",
          h("code", {}, "/var/lib/picd/setup-token"),
          " (",
          h("code", {}, "setup-token"),
          " in picd's state directory).",
        ),
        place("Or look in picd's log, which shows it at start: ", h("code", {}, "journalctl -u picd"), "."),
      ),
    ),
    form,
  );
  return { element, alert };
}
