// API keys on #/vault: for scripts and ACME clients. Listed without their tokens; a token is
// shown once, when the key is created or rotated.

import { api, ApiError } from "./api.js";
import { busy, cell, dataTable, formatAgo, formatTime, h, replace } from "./dom.js";
import { openDialog } from "./dialog.js";
import {
  alertRegion,
  checkbox,
  clearErrors,
  errorLine,
  field,
  foldListErrors,
  fromLocalInput,
  markInvalid,
  setAlert,
  showErrors,
} from "./forms.js";
import { onceWarning, secretField } from "./secret.js";

const DEFAULT_RATE_LIMIT = 60;
const SCOPES = [
  { value: "admin", label: "Admin", hint: "Everything an admin can do." },
  { value: "read-only", label: "Read-only", hint: "Reading admin routes (GET) only, never secrets (peers' configs and QR codes)." },
  { value: "dns", label: "DNS", hint: "Only /api/dns/*: ACME DNS-01 clients and dynamic DNS scripts." },
];

const keyApi = (id, rest = "") => `/api/keys/${encodeURIComponent(id)}${rest}`;

function tokenPanel(key, verb, done) {
  return h(
    "div",
    { class: "one-time", id: "key-token-panel" },
    h("h3", {}, `${verb} “${key.name}”`),
    secretField({
      id: "key-token",
      label: "Token",
      value: key.token,
      hint: "Send it as Authorization: Bearer <token>, or in an X-API-Key header.",
    }),
    onceWarning("picd keeps only a hash of the token. If it is lost, rotate the key to get a new one."),
    h(
      "div",
      { class: "actions" },
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "btn", id: "key-token-done", onclick: done }, "Done, I have copied it"),
    ),
  );
}

function keyRow(key, { rotate, revoke }) {
  const expired = key.expires_at && new Date(key.expires_at).getTime() <= Date.now();
  return h(
    "tr",
    { "data-id": key.id },
    cell("Name", {}, h("strong", {}, key.name)),
    cell("Prefix", {}, h("code", {}, `${key.prefix}…`)),
    cell(
      "Scopes",
      {},
      h(
        "span",
        { class: "tags" },
        key.scopes.map((s) => h("span", { class: "tag" }, s)),
      ),
    ),
    cell("Rate limit", { class: "nowrap" }, `${key.rate_limit_per_minute}/min`),
    cell(
      "Created",
      { class: "nowrap" },
      formatTime(key.rotated_at || key.created_at),
      key.rotated_at ? h("span", { class: "muted small" }, " (rotated)") : null,
    ),
    cell(
      "Last used",
      { class: "nowrap" },
      key.last_used_at ? formatAgo(key.last_used_at) : h("span", { class: "muted" }, "Never"),
    ),
    cell(
      "Expires",
      { class: "nowrap" },
      key.expires_at
        ? h(
            "span",
            { class: expired ? "expired" : null },
            `${formatTime(key.expires_at)}${expired ? " (expired)" : ""}`,
          )
        : h("span", { class: "muted" }, "Never"),
    ),
    cell(
      "",
      { class: "row-actions" },
      h(
        "button",
        { type: "button", class: "btn btn-small", "data-action": "rotate", onclick: () => rotate(key) },
        "Rotate",
      ),
      h(
        "button",
        { type: "button", class: "btn btn-small btn-danger", "data-action": "revoke", onclick: () => revoke(key) },
        "Revoke",
      ),
    ),
  );
}

function createForm(onCreated) {
  const alert = alertRegion("key-create-alert");
  const name = field({
    id: "key-name",
    name: "name",
    label: "Name",
    placeholder: "acme-client",
    hint: "What the key is for.",
  });
  const rate = field({
    id: "key-rate",
    name: "rate_limit_per_minute",
    label: "Rate limit (requests a minute)",
    inputmode: "numeric",
    value: String(DEFAULT_RATE_LIMIT),
  });
  const expires = field({
    id: "key-expires",
    name: "expires_at",
    label: "Expires (optional)",
    type: "datetime-local",
    hint: "Empty for never.",
  });
  const scopes = h(
    "fieldset",
    { id: "key-scopes", "data-field": "scopes", "data-label": "Scopes", "aria-describedby": "key-scopes-error" },
    h("legend", {}, "Scopes"),
    SCOPES.map((s) => checkbox({ id: `key-scope-${s.value}`, label: s.label, hint: s.hint, value: s.value })),
    errorLine("key-scopes"),
  );
  const input = (wrapper) => wrapper.querySelector("input");
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "key-create-submit" }, "Create key");
  const form = h(
    "form",
    { id: "key-create-form", novalidate: true },
    h("div", { class: "grid-2" }, h("div", {}, name, rate, expires), scopes),
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const rateText = input(rate).value.trim();
    if (rateText && !/^\d+$/.test(rateText)) {
      markInvalid(input(rate), "must be a whole number").focus();
      setAlert(alert, "Please correct the field marked below.");
      return;
    }
    const body = {
      name: input(name).value.trim(),
      scopes: [...scopes.querySelectorAll("input:checked")].map((box) => box.value),
    };
    if (rateText) body.rate_limit_per_minute = Number(rateText);
    const expiry = fromLocalInput(input(expires).value);
    if (expiry) body.expires_at = expiry;
    busy(submit, async () => {
      try {
        const created = await api("/api/keys", { method: "POST", body });
        form.reset();
        input(rate).value = String(DEFAULT_RATE_LIMIT);
        onCreated(created);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, foldListErrors(error, ["scopes"]), alert);
      }
    });
  });
  return h("div", {}, alert, form);
}

export function apiKeysSection() {
  const alert = alertRegion("keys-alert");
  const result = h("div", {});
  const list = h("div", { id: "keys-list" }, h("p", { class: "loading" }, "Loading…"));

  function showToken(key, verb) {
    replace(
      result,
      tokenPanel(key, verb, () => replace(result)),
    );
    result.querySelector("#key-token").focus();
    load();
  }

  const actions = {
    rotate: (key) =>
      openDialog({
        id: "key-rotate-dialog",
        title: `Rotate “${key.name}”?`,
        body: "A new token is made, and the current one stops working at once. Scripts using it need the new one.",
        confirmLabel: "Rotate key",
        action: async () => showToken(await api(keyApi(key.id, "/rotate"), { method: "POST" }), "New token for"),
      }),
    revoke: (key) =>
      openDialog({
        id: "key-revoke-dialog",
        title: `Revoke “${key.name}”?`,
        body: `Requests with this key (${key.prefix}…) are refused from now on. This cannot be undone.`,
        confirmLabel: "Revoke key",
        danger: true,
        action: async () => {
          await api(keyApi(key.id), { method: "DELETE" });
          replace(result);
          await load();
        },
      }),
  };

  async function load() {
    try {
      const data = await api("/api/keys");
      setAlert(alert, "");
      replace(
        list,
        data.keys.length === 0
          ? h("p", { class: "empty" }, "No API keys yet.")
          : dataTable({
              id: "keys-table",
              caption: "API keys",
              headings: ["Name", "Prefix", "Scopes", "Rate limit", "Created", "Last used", "Expires", ""],
              rows: data.keys.map((k) => keyRow(k, actions)),
            }),
      );
    } catch (error) {
      setAlert(alert, error.message);
    }
  }

  const form = createForm((created) => showToken(created, "Token for"));
  load();
  return h(
    "section",
    { class: "card", id: "keys", "aria-labelledby": "keys-title" },
    h("h2", { id: "keys-title" }, "API keys"),
    h("p", { class: "muted" }, "Tokens for scripts and ACME clients, with scopes and a rate limit of their own."),
    alert,
    form,
    result,
    list,
  );
}
