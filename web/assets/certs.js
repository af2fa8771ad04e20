// The cell's certificates on #/vault: the list, issuing one (its private key shown once),
// and revoking one with a reason (it then appears in the CRL).

import { api, ApiError } from "./api.js";
import { busy, cell, dataTable, formatTime, h, replace } from "./dom.js";
import { openDialog } from "./dialog.js";
import {
  alertRegion,
  clearErrors,
  errorLine,
  field,
  foldListErrors,
  markInvalid,
  setAlert,
  showErrors,
} from "./forms.js";
import { onceWarning, secretField } from "./secret.js";

const DEFAULT_DAYS = 365;
const REASONS = [
  ["unspecified", "Unspecified"],
  ["key_compromise", "Key compromise"],
  ["ca_compromise", "CA compromise"],
  ["affiliation_changed", "Affiliation changed"],
  ["superseded", "Superseded"],
  ["cessation_of_operation", "Cessation of operation"],
  ["certificate_hold", "Certificate hold"],
  ["privilege_withdrawn", "Privilege withdrawn"],
];
const REASON_LABELS = Object.fromEntries(REASONS);

/** "a.example, b.example c" -> ["a.example", "b.example", "c"]. */
const splitList = (text) => text.split(/[\s,]+/).filter(Boolean);

function certState(cert) {
  if (cert.revoked_at) {
    return h(
      "span",
      { class: "peer-state" },
      h("span", { class: "badge badge-revoked" }, "Revoked"),
      h("span", { class: "muted small" }, REASON_LABELS[cert.revocation_reason] || cert.revocation_reason || ""),
    );
  }
  if (new Date(cert.not_after).getTime() <= Date.now()) {
    return h("span", { class: "badge badge-expired" }, "Expired");
  }
  return h("span", { class: "badge badge-ok" }, "Valid");
}

function revokeDialog(cert, reload) {
  const select = h(
    "select",
    {
      id: "cert-revoke-reason",
      "data-field": "reason",
      "data-label": "Reason",
      "aria-describedby": "cert-revoke-reason-error",
    },
    REASONS.map(([value, label]) => h("option", { value }, label)),
  );
  openDialog({
    id: "cert-revoke-dialog",
    title: "Revoke this certificate?",
    body: [
      h(
        "p",
        {},
        `The certificate for ${[...cert.names, ...cert.ips].join(", ")} goes on the revocation list. Clients that check the CRL stop trusting it. This cannot be undone.`,
      ),
      h("div", { class: "field" }, h("label", { for: select.id }, "Reason"), select, errorLine(select.id)),
    ],
    confirmLabel: "Revoke",
    danger: true,
    action: async () => {
      await api(`/api/vault/certs/${encodeURIComponent(cert.id)}/revoke`, {
        method: "POST",
        body: { reason: select.value },
      });
      await reload();
    },
  });
}

function certRow(cert, reload) {
  const revoke = h(
    "button",
    { type: "button", class: "btn btn-small", "data-action": "revoke", disabled: Boolean(cert.revoked_at) },
    "Revoke",
  );
  revoke.addEventListener("click", () => revokeDialog(cert, reload));
  return h(
    "tr",
    { "data-id": cert.id },
    cell(
      "Names",
      {},
      h(
        "span",
        { class: "addresses" },
        [...cert.names, ...cert.ips].map((n) => h("code", {}, n)),
      ),
    ),
    cell("Serial", {}, h("code", { class: "key" }, cert.serial)),
    cell(
      "Valid",
      { class: "nowrap" },
      h(
        "span",
        { class: "addresses" },
        h("span", {}, `from ${formatTime(cert.not_before)}`),
        h("span", {}, `until ${formatTime(cert.not_after)}`),
      ),
    ),
    cell("State", {}, certState(cert)),
    cell("", { class: "row-actions" }, revoke),
  );
}

function issueForm(onIssued) {
  const alert = alertRegion("cert-issue-alert");
  const names = field({
    id: "cert-names",
    name: "names",
    label: "Names",
    placeholder: "files.home.example, *.home.example",
    hint: "Host names under the cell's domain, separated by commas or spaces; *.domain for a wildcard.",
  });
  const ips = field({
    id: "cert-ips",
    name: "ips",
    label: "IP addresses (optional)",
    placeholder: "10.77.0.1",
    hint: "Separated by commas or spaces.",
  });
  const days = field({
    id: "cert-days",
    name: "days",
    label: "Valid for (days)",
    inputmode: "numeric",
    value: String(DEFAULT_DAYS),
    hint: "1 to 825 days.",
  });
  const input = (wrapper) => wrapper.querySelector("input");
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary", id: "cert-issue-submit" },
    "Issue certificate",
  );
  const form = h(
    "form",
    { id: "cert-issue-form", novalidate: true },
    h("div", { class: "grid-3" }, names, ips, days),
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const dayText = input(days).value.trim();
    if (dayText && !/^\d+$/.test(dayText)) {
      markInvalid(input(days), "must be a whole number of days").focus();
      setAlert(alert, "Please correct the field marked below.");
      return;
    }
    const body = { names: splitList(input(names).value), ips: splitList(input(ips).value) };
    if (dayText) body.days = Number(dayText);
    busy(submit, async () => {
      try {
        const issued = await api("/api/vault/certs", { method: "POST", body });
        form.reset();
        input(days).value = String(DEFAULT_DAYS);
        onIssued(issued);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, foldListErrors(error, ["names", "ips"]), alert);
      }
    });
  });
  return h("div", {}, alert, form);
}

/** The certificate and, this once, its private key. */
function issuedPanel(issued, done) {
  return h(
    "div",
    { class: "one-time", id: "cert-issued" },
    h("h3", {}, `Issued for ${[...issued.names, ...issued.ips].join(", ")}`),
    h("p", { class: "muted small" }, `Valid until ${formatTime(issued.not_after)}. Serial ${issued.serial}.`),
    onceWarning("picd does not keep the private key. Copy it now; if it is lost, issue a new certificate."),
    h(
      "div",
      { class: "grid-2" },
      secretField({ id: "cert-issued-cert", label: "Certificate (PEM)", value: issued.cert_pem, multiline: true }),
      secretField({ id: "cert-issued-key", label: "Private key (PEM)", value: issued.key_pem, multiline: true }),
    ),
    h(
      "div",
      { class: "actions" },
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "btn", id: "cert-issued-done", onclick: done }, "Done, I have copied it"),
    ),
  );
}

export function certificatesSection() {
  const alert = alertRegion("certs-alert");
  const result = h("div", {});
  const list = h("div", { id: "certs-list" }, h("p", { class: "loading" }, "Loading…"));

  async function load() {
    try {
      const data = await api("/api/vault/certs");
      setAlert(alert, "");
      replace(
        list,
        data.certificates.length === 0
          ? h("p", { class: "empty" }, "No certificates issued yet.")
          : dataTable({
              id: "certs-table",
              caption: "Certificates issued by the cell's CA",
              headings: ["Names", "Serial", "Valid", "State", ""],
              rows: data.certificates.map((c) => certRow(c, load)),
            }),
      );
    } catch (error) {
      setAlert(alert, error.message);
    }
  }

  const form = issueForm((issued) => {
    replace(
      result,
      issuedPanel(issued, () => replace(result)),
    );
    result.querySelector("textarea#cert-issued-key").focus();
    load();
  });
  load();
  return h(
    "section",
    { class: "card", id: "certs", "aria-labelledby": "certs-title" },
    h("h2", { id: "certs-title" }, "Certificates"),
    h("p", { class: "muted" }, "Server certificates signed by the cell's CA, for services inside the cell."),
    alert,
    form,
    result,
    list,
  );
}
