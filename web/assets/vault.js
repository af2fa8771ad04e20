// #/vault: the cell's CA (certificate, CRL, age public key), certificates, the keys of other
// cells this one trusts, and API keys.

import { api, ApiError } from "./api.js";
import { apiKeysSection } from "./apikeys.js";
import { certificatesSection } from "./certs.js";
import { busy, cell, dataTable, formatTime, h, replace } from "./dom.js";
import { openDialog } from "./dialog.js";
import { alertRegion, clearErrors, errorLine, field, setAlert, showErrors } from "./forms.js";
import { copyButton } from "./secret.js";

const KIND_LABELS = { age: "age", wireguard: "WireGuard" };

function authoritySection() {
  const alert = alertRegion("ca-alert");
  const ageKey = h("input", {
    id: "vault-age-key",
    type: "text",
    readonly: true,
    class: "secret-value",
    spellcheck: "false",
    "aria-label": "The vault's age public key",
  });
  const ageField = h(
    "div",
    { class: "field secret" },
    h(
      "div",
      { class: "secret-head" },
      h("label", { for: ageKey.id }, "The vault's age public key"),
      copyButton(ageKey, "vault-age-key-copy"),
    ),
    ageKey,
    h(
      "p",
      { class: "hint" },
      "Other cells encrypt what they send this cell to this key. It is public: sharing it is safe.",
    ),
  );
  api("/api/vault/age-public-key")
    .then((data) => (ageKey.value = data.public_key))
    .catch((error) => setAlert(alert, error.message));
  // What the root may vouch for (its name constraints), and the retired roots still kept.
  const scope = h("p", { id: "vault-ca-scope", class: "muted" });
  api("/api/vault/cas")
    .then((cas) => {
      const limits = cas.current && cas.current.name_constraints;
      const parts = [];
      if (limits) {
        parts.push(
          `It vouches only for ${limits.domain} and the names under it, and for ${limits.subnet_v4} and ${limits.subnet_v6}.`,
        );
      }
      const kept = (cas.retired || []).filter((old) => old.keep_until);
      if (kept.length) {
        const until = kept.map((old) => formatTime(old.keep_until)).join(", ");
        parts.push(
          ` An earlier root is kept for the certificates it signed (until ${until}): devices must import the current one.`,
        );
      }
      scope.textContent = parts.join("");
    })
    .catch((error) => setAlert(alert, error.message));
  return h(
    "section",
    { class: "card", id: "ca", "aria-labelledby": "ca-title" },
    h("h2", { id: "ca-title" }, "Certificate authority"),
    alert,
    h(
      "p",
      {},
      "Devices that install the cell's root certificate trust the certificates issued below. ",
      "The revocation list (CRL) names the certificates revoked since.",
    ),
    scope,
    h(
      "div",
      { class: "actions downloads" },
      h(
        "a",
        { class: "btn btn-primary", id: "vault-ca-download", href: "/api/vault/ca.crt", download: "picd-cell-ca.crt" },
        "Download CA certificate",
      ),
      h("a", { class: "btn", id: "vault-crl-pem", href: "/api/vault/crl", download: "picd-cell.crl.pem" }, "CRL (PEM)"),
      h(
        "a",
        { class: "btn", id: "vault-crl-der", href: "/api/vault/crl?format=der", download: "picd-cell.crl" },
        "CRL (DER)",
      ),
    ),
    ageField,
  );
}

function trustKeyRow(key, remove) {
  return h(
    "tr",
    { "data-id": key.id },
    cell("Name", {}, h("strong", {}, key.name)),
    cell("Kind", {}, KIND_LABELS[key.kind] || key.kind),
    cell("Public key", {}, h("code", { class: "key" }, key.public_key)),
    cell("Added", { class: "nowrap" }, formatTime(key.created_at)),
    cell(
      "",
      { class: "row-actions" },
      h(
        "button",
        { type: "button", class: "btn btn-small btn-danger", "data-action": "remove", onclick: () => remove(key) },
        "Remove",
      ),
    ),
  );
}

function trustKeysSection() {
  const alert = alertRegion("trust-alert");
  const list = h("div", { id: "trust-list" }, h("p", { class: "loading" }, "Loading…"));
  const name = field({ id: "trust-name", name: "name", label: "Name", placeholder: "parents-cell" });
  const kind = h(
    "select",
    { id: "trust-kind", "data-field": "kind", "data-label": "Kind", "aria-describedby": "trust-kind-error" },
    h("option", { value: "age" }, "age (encryption)"),
    h("option", { value: "wireguard" }, "WireGuard"),
  );
  const key = field({ id: "trust-key", name: "public_key", label: "Public key", placeholder: "age1… or base64" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "trust-add-submit" }, "Add key");
  const form = h(
    "form",
    { id: "trust-add-form", novalidate: true },
    h(
      "div",
      { class: "grid-trust" },
      name,
      h("div", { class: "field" }, h("label", { for: kind.id }, "Kind"), kind, errorLine(kind.id)),
      key,
    ),
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  const input = (wrapper) => wrapper.querySelector("input");

  function remove(trusted) {
    openDialog({
      id: "trust-remove-dialog",
      title: `Remove “${trusted.name}”?`,
      body: "The cell stops trusting this key. You can add it again later.",
      confirmLabel: "Remove key",
      danger: true,
      action: async () => {
        await api(`/api/vault/trust-keys/${encodeURIComponent(trusted.id)}`, { method: "DELETE" });
        await load();
      },
    });
  }

  async function load() {
    try {
      const data = await api("/api/vault/trust-keys");
      replace(
        list,
        data.trust_keys.length === 0
          ? h("p", { class: "empty" }, "This cell trusts no other cell yet.")
          : dataTable({
              id: "trust-table",
              caption: "Keys of trusted cells",
              headings: ["Name", "Kind", "Public key", "Added", ""],
              rows: data.trust_keys.map((k) => trustKeyRow(k, remove)),
            }),
      );
    } catch (error) {
      setAlert(alert, error.message);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    busy(submit, async () => {
      try {
        await api("/api/vault/trust-keys", {
          method: "POST",
          body: { name: input(name).value.trim(), kind: kind.value, public_key: input(key).value.trim() },
        });
        form.reset();
        setAlert(alert, "Key added.", "ok");
        await load();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  load();
  return h(
    "section",
    { class: "card", id: "trust", "aria-labelledby": "trust-title" },
    h("h2", { id: "trust-title" }, "Trusted cells"),
    h("p", { class: "muted" }, "The public keys (age and WireGuard) of other cells this cell trusts."),
    alert,
    form,
    list,
  );
}

export function mount(root) {
  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Vault"), h("p", {}, "The cell's certificate authority, trusted cells, and API keys.")),
    ),
    authoritySection(),
    certificatesSection(),
    trustKeysSection(),
    apiKeysSection(),
  );
  return {};
}
