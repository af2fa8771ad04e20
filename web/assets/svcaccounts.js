// The Services page's accounts: one card per installed service listing who has an account
// (a peer, or the owner), adding one for a peer or for the owner, deleting one (its data is
// archived, not destroyed) and showing an account's credentials in a dialog.

import { api, ApiError } from "./api.js";
import { busy, cell, dataTable, formatTime, h, replace } from "./dom.js";
import { openDialog } from "./dialog.js";
import { alertRegion, clearErrors, selectField, setAlert, showErrors } from "./forms.js";
import { credentialFields } from "./svccreds.js";

const OWNER = "__owner";

const accountsPath = (service) => `/api/services/catalog/${encodeURIComponent(service.id)}/accounts`;
const accountPath = (service, username) => `${accountsPath(service)}/${encodeURIComponent(username)}`;

/** A dialog with the credentials and a Close button; removed (and so wiped) when closed. */
async function showCredentials(service, account, button, alert) {
  await busy(button, async () => {
    let creds;
    try {
      creds = await api(`${accountPath(service, account.username)}/credentials`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setAlert(alert, error.message);
      return;
    }
    const close = h("button", { type: "button", class: "btn btn-primary", id: "svc-creds-close" }, "Close");
    const dialog = h(
      "dialog",
      { id: "svc-creds-dialog", "aria-labelledby": "svc-creds-title" },
      h(
        "div",
        { class: "dialog-body" },
        h("h2", { id: "svc-creds-title" }, `${service.name}: ${account.username}`),
        h("p", { class: "muted small" }, "Give these to the person the account is for, and to no one else."),
        credentialFields(creds, "svc-creds-"),
        h("div", { class: "actions" }, close),
      ),
    );
    close.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    close.focus();
  });
}

function accountRow(service, account, actions) {
  const credentials = h(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      id: `svc-creds-${service.id}-${account.username}`,
      "aria-label": `Credentials of ${account.username}`,
    },
    "Credentials",
  );
  credentials.addEventListener("click", () => showCredentials(service, account, credentials, actions.alert));
  const remove = h(
    "button",
    {
      type: "button",
      class: "btn btn-small btn-danger",
      id: `svc-delete-${service.id}-${account.username}`,
      "aria-label": `Delete the account ${account.username}`,
      onclick: () => actions.remove(account),
    },
    "Delete",
  );
  return h(
    "tr",
    { "data-account": account.username },
    cell("Username", {}, h("code", {}, account.username)),
    cell("For", {}, account.peer_name ? `Peer ${account.peer_name}` : "The owner"),
    cell("Created", { class: "nowrap" }, formatTime(account.created_at)),
    cell("Actions", { class: "row-actions" }, h("span", { class: "badges" }, credentials, remove)),
  );
}

/** The add form: a peer without an account in this service, or the owner. */
function addForm(service, accounts, peers, onAdded) {
  const taken = new Set(accounts.map((a) => a.peer_name).filter(Boolean));
  const hasOwner = accounts.some((a) => !a.peer_name);
  const options = peers.filter((p) => !taken.has(p.name)).map((p) => ({ value: p.name, label: `Peer ${p.name}` }));
  if (!hasOwner) options.push({ value: OWNER, label: "The owner (you)" });
  if (options.length === 0) {
    return h("p", { class: "muted small" }, "Everyone has an account in this service.");
  }
  const alert = alertRegion(`svc-add-${service.id}-alert`);
  const who = selectField({
    id: `svc-add-${service.id}-who`,
    name: "peer",
    label: "Account for",
    options,
    value: options[0].value,
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: `svc-add-${service.id}-submit` }, "Add account");
  const form = h(
    "form",
    { class: "inline-form", id: `svc-add-${service.id}`, novalidate: true },
    who,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const value = who.querySelector("select").value;
    const body = value === OWNER ? { owner: true } : { peer: value };
    busy(submit, async () => {
      try {
        onAdded(await api(accountsPath(service), { method: "POST", body }));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.fields.owner) error.fields.peer = error.fields.owner;
        showErrors(form, error, alert);
      }
    });
  });
  return h("div", {}, alert, form);
}

/**
 * One card per installed service. `load(services, peers, retentionDays)` draws them;
 * `onChanged` reloads the page's data.
 */
export function accountsSections(ctx, onChanged) {
  const element = h("div", { id: "svc-accounts" });

  async function serviceCard(service, peers, retentionDays) {
    const alert = alertRegion(`svc-accounts-${service.id}-alert`);
    const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
    const section = h(
      "section",
      { class: "card", id: `svc-accounts-${service.id}`, "aria-labelledby": `svc-accounts-${service.id}-title` },
      h(
        "div",
        { class: "card-header" },
        h("h2", { id: `svc-accounts-${service.id}-title` }, `${service.name}: accounts`),
      ),
      alert,
      body,
    );
    const actions = {
      alert,
      remove: (account) =>
        openDialog({
          id: "svc-delete-dialog",
          title: `Delete the account ${account.username}?`,
          body: h(
            "p",
            {},
            `${account.username} can no longer sign in to ${service.name}. The account's data is archived, not destroyed: `,
            `it is kept for ${retentionDays} days, then deleted.`,
          ),
          confirmLabel: "Delete account",
          danger: true,
          action: async () => {
            await api(accountPath(service, account.username), { method: "DELETE" });
            ctx.flash(`The account ${account.username} was deleted; its data is archived.`);
            onChanged();
          },
        }),
    };
    try {
      const data = await api(accountsPath(service));
      const table = data.accounts.length
        ? dataTable({
            id: `svc-accounts-${service.id}-table`,
            caption: `Accounts in ${service.name}`,
            headings: ["Username", "For", "Created", "Actions"],
            rows: data.accounts.map((a) => accountRow(service, a, actions)),
          })
        : h("p", { class: "empty" }, "No accounts yet.");
      replace(
        body,
        table,
        h("h3", { class: "subhead" }, "Add an account"),
        addForm(service, data.accounts, peers, (account) => {
          const note = account.live ? "" : " It is recorded; the service accepts it once it runs.";
          ctx.flash(`An account for ${account.username} was added.${note}`);
          onChanged();
        }),
      );
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(body);
      setAlert(alert, error.message);
    }
    return section;
  }

  async function load(services, peers, retentionDays) {
    const installed = services.filter((s) => s.installed);
    const cards = await Promise.all(installed.map((s) => serviceCard(s, peers, retentionDays)));
    replace(element, cards);
  }
  return { element, load };
}
