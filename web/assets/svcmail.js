// The Services page's mail part, drawn only while the mail service is installed: every
// mailbox with its use against its quota, a mailbox's own quota set or cleared back to the
// default, the default quota itself, and the aliases (svcaliases.js).

import { api, ApiError } from "./api.js";
import { busy, cell, dataTable, formatBytes, h, replace } from "./dom.js";
import { openDialog } from "./dialog.js";
import { alertRegion, checkedValue, choices, clearErrors, setAlert, showErrors } from "./forms.js";
import { aliasesCard } from "./svcaliases.js";
import { quotaField, usageBar } from "./svcquota.js";

const MAIL = "mail";
const quotaPath = (username) => `/api/email/mailboxes/${encodeURIComponent(username)}/quota`;

/** The question of a mailbox's quota: the default, or a limit of its own. */
function quotaDialog(mailbox, defaultBytes, onSaved) {
  const own = quotaField({
    id: "mail-quota-limit",
    name: "limit_bytes",
    label: "Limit",
    bytes: mailbox.quota.default ? defaultBytes : mailbox.quota.limit_bytes,
  });
  const which = choices({
    id: "mail-quota-which",
    name: "default",
    label: "Quota",
    value: mailbox.quota.default ? "default" : "own",
    options: [
      { value: "default", label: `The default (${formatBytes(defaultBytes)})`, hint: "Follows the default when it changes." },
      { value: "own", label: "A limit of its own" },
    ],
  });
  const sync = () => {
    own.element.hidden = checkedValue(which) !== "own";
  };
  which.addEventListener("change", sync);
  sync();
  openDialog({
    id: "mail-quota-dialog",
    title: `Quota of ${mailbox.username}`,
    body: h(
      "div",
      {},
      h("p", { class: "muted small" }, "Mail that would take the mailbox past its quota is refused at delivery."),
      which,
      own.element,
    ),
    confirmLabel: "Save quota",
    action: async () => {
      const limit = checkedValue(which) === "own" ? own.read() : null;
      const saved = await api(quotaPath(mailbox.username), { method: "PUT", body: { limit_bytes: limit } });
      onSaved(saved);
    },
  });
}

function mailboxRow(mailbox, actions) {
  const quota = mailbox.quota;
  const change = h(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      id: `mail-quota-${mailbox.username}`,
      "aria-label": `Quota of ${mailbox.username}`,
      onclick: () => actions.quota(mailbox),
    },
    "Quota",
  );
  const inbox = mailbox.folders.find((f) => f.name === "INBOX") || { messages: 0, new: 0 };
  const messages = mailbox.folders.reduce((sum, f) => sum + f.messages, 0);
  return h(
    "tr",
    { "data-mailbox": mailbox.username },
    // One element per cell: on a phone each cell is a label and one value beside it.
    cell(
      "Mailbox",
      {},
      h("div", {}, h("code", {}, mailbox.username), h("div", { class: "muted small" }, mailbox.peer ? `Peer ${mailbox.peer}` : "The owner")),
    ),
    cell(
      "Messages",
      { class: "nowrap" },
      h("span", {}, `${messages}`, inbox.new ? h("span", { class: "muted small" }, ` (${inbox.new} new)`) : null),
    ),
    cell("Use", { class: "usage-cell" }, usageBar(quota.used_bytes, quota.limit_bytes, `Use of ${mailbox.username}'s quota`)),
    cell(
      "Quota",
      { class: "nowrap" },
      h(
        "span",
        {},
        `${formatBytes(quota.limit_bytes)} `,
        h("span", { class: quota.default ? "badge" : "badge badge-online" }, quota.default ? "Default" : "Own limit"),
      ),
    ),
    cell("Actions", { class: "row-actions" }, change),
  );
}

function defaultForm(defaultBytes, ctx, onSaved) {
  const alert = alertRegion("mail-default-alert");
  const quota = quotaField({
    id: "mail-default",
    name: "default_bytes",
    label: "Limit",
    bytes: defaultBytes,
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "mail-default-submit" }, "Save");
  const form = h(
    "form",
    { class: "inline-form inline-form-top", id: "mail-default-form", novalidate: true },
    quota.element,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    busy(submit, async () => {
      try {
        const body = { default_bytes: quota.read() };
        const saved = await api("/api/email/quota", { method: "PUT", body });
        ctx.flash(`The default mail quota is now ${formatBytes(saved.default_bytes)}.`);
        onSaved();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  return h("div", {}, alert, form);
}

function mailboxesCard(data, ctx, reload) {
  const actions = {
    quota: (mailbox) =>
      quotaDialog(mailbox, data.defaultBytes, (saved) => {
        const what = saved.default ? "the default" : "its own limit";
        ctx.flash(`The quota of ${saved.username} is ${what}, ${formatBytes(saved.limit_bytes)}.`);
        reload();
      }),
  };
  const table = data.mailboxes.length
    ? dataTable({
        id: "mail-mailboxes-table",
        caption: "Mailboxes",
        headings: ["Mailbox", "Messages", "Use", "Quota", "Actions"],
        rows: data.mailboxes.map((m) => mailboxRow(m, actions)),
      })
    : h("p", { class: "empty" }, "No mailboxes yet: each account in Mail has one.");
  return h(
    "section",
    { class: "card", id: "mail-mailboxes-card", "aria-labelledby": "mail-mailboxes-title" },
    h("div", { class: "card-header" }, h("h2", { id: "mail-mailboxes-title" }, "Mail: mailboxes and quotas")),
    table,
    h("h3", { class: "subhead" }, "Default quota"),
    h("p", { class: "muted small" }, "Every mailbox without a limit of its own has this one."),
    defaultForm(data.defaultBytes, ctx, reload),
  );
}

/** Everything the mail part shows, read in one go. */
async function readMail() {
  const [boxes, quota, aliases, config] = await Promise.all([
    api("/api/email/mailboxes"),
    api("/api/email/quota"),
    api("/api/email/aliases"),
    api("/api/config"),
  ]);
  return {
    mailboxes: boxes.mailboxes,
    defaultBytes: quota.default_bytes,
    aliases: aliases.aliases,
    domain: config.cell.domain,
  };
}

/**
 * The mail part: `load(services)` draws it when mail is installed and empties it when not.
 * A refresh while the owner types into one of its fields waits for the next one.
 */
export function mailSection(ctx) {
  const element = h("div", { id: "svc-mail" });
  const alert = alertRegion("mail-alert");
  let installed = false;

  async function reload() {
    try {
      const data = await readMail();
      replace(element, alert, mailboxesCard(data, ctx, reload), aliasesCard(data, ctx, reload));
      setAlert(alert, "");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      // Removed meanwhile: the next page load draws nothing.
      if (error.code === "not_installed") {
        replace(element);
        return;
      }
      replace(element, alert);
      setAlert(alert, error.message);
    }
  }

  async function load(services) {
    installed = services.some((s) => s.id === MAIL && s.installed);
    if (!installed) {
      replace(element);
      return;
    }
    const focused = document.activeElement;
    if (focused && element.contains(focused) && focused.matches("input, select")) return;
    await reload();
  }
  return { element, load };
}
