// The setup wizard: first the setup code that proves this is the cell's owner, then admin
// account, cell, DNS, TLS, review. The server keeps the draft and which step is next; this page
// shows one step at a time, prefilled from GET /api/setup/step, and lets the owner go back to
// any step already reached.

import { api as apiCall, ApiError, rememberCsrfToken } from "./api.js";
import { cellSection, dnsSection } from "./cellform.js";
import { codePage } from "./setupcode.js";
import { tlsSection } from "./tlsform.js";
import { brandMark, busy, h, replace } from "./dom.js";
import { alertRegion, clearErrors, field, markInvalid, setAlert, showErrors } from "./forms.js";

const STEPS = [
  { id: "admin", label: "Account" },
  { id: "cell", label: "Cell" },
  { id: "dns", label: "DNS" },
  { id: "tls", label: "TLS" },
  { id: "review", label: "Review" },
];

// The wizard handles its own 401 (setup_token_required: back to the code) instead of being
// sent to the login page, where there is nobody to sign in as yet.
const api = (path, options = {}) => apiCall(path, { ...options, redirect: false });

const wizard = document.getElementById("wizard");
const progress = document.getElementById("steps");
const server = { current: "admin", completed: [] };
let firstRender = true;

document.getElementById("brand").prepend(brandMark());

const position = (step) => STEPS.findIndex((s) => s.id === step);

function renderProgress(viewing) {
  replace(
    progress,
    STEPS.map((step) => {
      const done = server.completed.includes(step.id);
      return h(
        "li",
        { class: done ? "done" : null, "aria-current": step.id === viewing ? "step" : null },
        h("span", { class: "step-name" }, step.label),
        done ? h("span", { class: "visually-hidden" }, " (done)") : null,
      );
    }),
  );
}

function fail(error) {
  const alert = alertRegion("wizard-alert");
  replace(wizard, alert, h("button", { type: "button", class: "btn", onclick: () => start() }, "Try again"));
  setAlert(alert, error.message);
}

/** The answer to a wizard call that lost its claim (another browser claimed the wizard). */
const CLAIM_LOST = "This browser no longer holds the setup wizard (it was claimed elsewhere, or the session ended). Enter the setup code again.";

async function show(step, notice) {
  let answer;
  try {
    answer = await api(`/api/setup/step?step=${encodeURIComponent(step)}`);
  } catch (error) {
    if (error instanceof ApiError && error.code === "setup_complete") {
      window.location.replace("/");
      return;
    }
    if (error instanceof ApiError && error.code === "setup_token_required") {
      showClaim(CLAIM_LOST);
      return;
    }
    fail(error);
    return;
  }
  server.current = answer.current_step;
  server.completed = answer.completed_steps;
  renderProgress(step);
  const view = VIEWS[step](answer.data);
  replace(wizard, view.element);
  document.title = `${STEPS[position(step)].label} · Set up your cell`;
  if (notice) {
    setAlert(view.alert, notice, "info");
  }
  if (firstRender) {
    view.element.querySelector("input, button[type=submit]")?.focus();
  } else {
    view.element.querySelector(".step-title")?.focus();
  }
  firstRender = false;
}

/**
 * One step's page: heading, alert, inputs, Back and Continue. `read` returns the step's data,
 * or null to move on without sending (nothing changed); `check` may mark fields and return
 * false to stop before the request.
 */
function stepPage({ step, title, lead, body, read, check }) {
  const alert = alertRegion(`${step}-alert`);
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: `${step}-submit` }, "Continue");
  const previous = STEPS[position(step) - 1];
  const back = previous
    ? h("button", { type: "button", class: "btn", id: `${step}-back`, onclick: () => show(previous.id) }, "Back")
    : null;
  const form = h(
    "form",
    { id: `${step}-form`, novalidate: true },
    body,
    h("div", { class: "actions" }, back, h("span", { class: "spacer" }), submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    if (check && check() === false) {
      setAlert(alert, "Please correct the field marked below.");
      return;
    }
    const data = read();
    const next = STEPS[position(step) + 1].id;
    if (data === null) {
      await show(next);
      return;
    }
    await busy(submit, async () => {
      try {
        const answer = await api("/api/setup/step", { method: "POST", body: { step, data } });
        await show(answer.current_step);
      } catch (error) {
        await stepFailed(error, form, alert);
      }
    });
  });
  const element = h(
    "section",
    { "aria-labelledby": `${step}-title` },
    h("h1", { class: "step-title", id: `${step}-title`, tabindex: "-1" }, title),
    h("p", { class: "lead" }, lead),
    alert,
    form,
  );
  return { element, alert };
}

async function stepFailed(error, form, alert) {
  if (!(error instanceof ApiError)) throw error;
  if (error.code === "setup_complete") {
    window.location.assign("/");
  } else if (error.code === "setup_token_required") {
    showClaim(CLAIM_LOST);
  } else if (error.code === "step_out_of_order") {
    const status = await api("/api/setup/status");
    await show(status.current_step, "An earlier step needs to be completed first.");
  } else {
    showErrors(form, error, alert);
  }
}

function adminStep(data) {
  const existing = data && data.username;
  const username = field({
    id: "admin-username",
    name: "username",
    label: "Username",
    autocomplete: "username",
    placeholder: "admin",
    value: existing || "",
    hint: "Lowercase letters, digits, '.', '_' or '-', starting with a letter.",
  });
  const password = field({
    id: "admin-password",
    name: "password",
    label: "Password",
    type: "password",
    autocomplete: "new-password",
    hint: existing
      ? "At least 10 characters. Leave both password fields blank to keep the one you chose."
      : "At least 10 characters. A few unrelated words make a strong, memorable passphrase.",
  });
  const confirm = field({
    id: "admin-confirm",
    name: "confirm",
    label: "Confirm password",
    type: "password",
    autocomplete: "new-password",
  });
  const input = (wrapper) => wrapper.querySelector("input");
  return stepPage({
    step: "admin",
    title: "Create the admin account",
    lead: "You sign in with this account to manage the cell.",
    body: [username, password, confirm],
    check: () => {
      if (input(password).value !== input(confirm).value) {
        markInvalid(input(confirm), "does not match the password").focus();
        return false;
      }
      return true;
    },
    read: () => {
      const name = input(username).value.trim();
      if (existing && name === existing && !input(password).value) {
        return null;
      }
      return { username: name, password: input(password).value };
    },
  });
}

function cellStep(data) {
  const cell = cellSection("", "cell-", data);
  return stepPage({
    step: "cell",
    title: "Name your cell",
    lead: "How the cell is called, and where peers reach it from the internet.",
    body: cell.element,
    read: cell.read,
  });
}

function dnsStep(data) {
  const dns = dnsSection("", "dns-", data);
  return stepPage({
    step: "dns",
    title: "DNS",
    lead: "The cell answers DNS for its peers and forwards everything else.",
    body: dns.element,
    read: dns.read,
  });
}

function tlsStep(data) {
  const tls = tlsSection("", "tls-", data);
  return stepPage({
    step: "tls",
    title: "Certificates",
    lead: "Browsers reach the cell over https. Choose where its certificates come from.",
    body: tls.element,
    read: tls.read,
  });
}

function tlsRows(tls) {
  if (tls.mode !== "acme") return [["Certificates", "The cell's own CA"]];
  return [
    ["Certificates", "ACME"],
    ["ACME directory", tls.acme_ca || "Let's Encrypt"],
    ["Contact e-mail", tls.acme_email || "—"],
  ];
}

function summary(title, step, rows) {
  return h(
    "div",
    { class: "summary-section" },
    h(
      "div",
      { class: "summary-head" },
      h("h2", {}, title),
      h(
        "button",
        { type: "button", class: "btn btn-small btn-quiet", onclick: () => show(step), "aria-label": `Edit ${title}` },
        "Edit",
      ),
    ),
    rows
      ? h("dl", {}, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]))
      : h("p", { class: "muted" }, "Not entered yet."),
  );
}

function reviewStep(data) {
  const { admin, cell, dns, tls } = data || {};
  const alert = alertRegion("review-alert");
  const submit = h("button", { type: "button", class: "btn btn-primary", id: "complete-setup" }, "Complete setup");
  submit.addEventListener("click", () =>
    busy(submit, async () => {
      setAlert(alert, "");
      try {
        const answer = await api("/api/setup/complete", { method: "POST" });
        rememberCsrfToken(answer.csrf_token);
        window.location.assign("/");
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.code === "setup_token_required") {
          showClaim(CLAIM_LOST);
          return;
        }
        setAlert(alert, error.message);
      }
    }),
  );
  const element = h(
    "section",
    { "aria-labelledby": "review-title" },
    h("h1", { class: "step-title", id: "review-title", tabindex: "-1" }, "Review and finish"),
    h("p", { class: "lead" }, "Check the settings below. Completing setup creates the admin account and signs you in."),
    alert,
    h(
      "div",
      { class: "summary" },
      summary("Admin account", "admin", admin && [["Username", admin.username]]),
      summary(
        "Cell",
        "cell",
        cell && [
          ["Name", cell.name],
          ["Domain", cell.domain],
          ["Public endpoint", cell.public_endpoint],
          ["WireGuard port", String(cell.wireguard_port)],
          ["IPv4 subnet", cell.subnet_v4],
          ["IPv6 subnet", cell.subnet_v6],
        ],
      ),
      summary(
        "DNS",
        "dns",
        dns && [
          ["Upstream resolvers", dns.upstreams.join(", ")],
          ["Split horizon", dns.split_horizon ? "On" : "Off"],
        ],
      ),
      summary("TLS", "tls", tls && tlsRows(tls)),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "btn", id: "review-back", onclick: () => show("tls") }, "Back"),
      h("span", { class: "spacer" }),
      submit,
    ),
  );
  return { element, alert };
}

const VIEWS = { admin: adminStep, cell: cellStep, dns: dnsStep, tls: tlsStep, review: reviewStep };

function showClaim(notice) {
  renderProgress(null);
  const view = codePage({
    api,
    onClaimed: (answer) => {
      rememberCsrfToken(answer.csrf_token);
      return show(answer.current_step);
    },
  });
  replace(wizard, view.element);
  document.title = "Setup code · Set up your cell";
  if (notice) {
    setAlert(view.alert, notice, "info");
  }
  view.element.querySelector(firstRender ? "input" : ".step-title")?.focus();
  firstRender = false;
}

async function start() {
  let status;
  try {
    status = await api("/api/setup/status");
  } catch (error) {
    fail(error);
    return;
  }
  if (status.complete) {
    window.location.replace("/");
    return;
  }
  if (!status.claimed) {
    showClaim();
    return;
  }
  // This browser claimed the wizard before (a reload): carry on with the claim's CSRF token.
  rememberCsrfToken(status.csrf_token);
  await show(status.current_step);
}

start();
