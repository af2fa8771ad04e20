// The mail part's aliases: addresses at the cell's domain that deliver into a mailbox, listed,
// added (a local part and the mailbox it delivers into) and deleted after a question.

import { api, ApiError } from "./api.js";
import { busy, cell, dataTable, formatTime, h } from "./dom.js";
import { alertRegion, clearErrors, field, selectField, showErrors } from "./forms.js";
import { confirmDelete, deleteButton } from "./fwshared.js";

const ALIASES = "/api/email/aliases";

/**
 * The refusals that name no field but are about one: the alias is taken (by an alias or a
 * mailbox), or the mailbox picked is gone.
 */
const CODE_FIELDS = { alias_exists: "alias", mailbox_exists: "alias", not_found: "target" };

function onField(error) {
  const name = CODE_FIELDS[error.code];
  if (name && Object.keys(error.fields).length === 0) {
    error.fields = { [name]: error.message };
  }
  return error;
}

function aliasRow(alias, domain, onDelete) {
  return h(
    "tr",
    { "data-alias": alias.alias },
    cell("Address", {}, h("code", {}, alias.address || `${alias.alias}@${domain}`)),
    cell("Delivers to", {}, h("code", {}, alias.target)),
    cell("Added", { class: "nowrap" }, formatTime(alias.created_at)),
    cell(
      "Actions",
      { class: "row-actions" },
      deleteButton(`mail-alias-delete-${alias.alias}`, `the alias ${alias.alias}`, () => onDelete(alias)),
    ),
  );
}

function addForm(mailboxes, domain, ctx, onAdded) {
  if (mailboxes.length === 0) {
    return h("p", { class: "muted small", id: "mail-alias-none" }, "An alias delivers into a mailbox: add an account in Mail first.");
  }
  const alert = alertRegion("mail-alias-alert");
  const alias = field({ id: "mail-alias-name", name: "alias", label: "Alias", placeholder: "info" });
  // The domain beside the input: what is typed is only the part before it.
  const input = alias.querySelector("input");
  const suffix = h("span", { class: "input-suffix", id: "mail-alias-domain" }, `@${domain}`);
  const row = h("div", { class: "input-row" });
  input.replaceWith(row);
  row.append(input, suffix);
  input.setAttribute("aria-describedby", `mail-alias-domain ${input.getAttribute("aria-describedby")}`);
  const target = selectField({
    id: "mail-alias-target",
    name: "target",
    label: "Delivers to",
    options: mailboxes.map((m) => ({ value: m.username, label: m.peer ? `${m.username} (peer)` : `${m.username} (owner)` })),
    value: mailboxes[0].username,
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "mail-alias-submit" }, "Add alias");
  const form = h(
    "form",
    { class: "inline-form inline-form-top", id: "mail-alias-form", novalidate: true },
    alias,
    target,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const body = { alias: input.value.trim(), target: target.querySelector("select").value };
    busy(submit, async () => {
      try {
        const added = await api(ALIASES, { method: "POST", body });
        ctx.flash(`Mail to ${added.alias}@${domain} now reaches ${added.target}.`);
        onAdded();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, onField(error), alert);
      }
    });
  });
  return h("div", {}, alert, form);
}

/** The aliases card from what the mail part read (`aliases`, `mailboxes`, `domain`). */
export function aliasesCard(data, ctx, reload) {
  const remove = (alias) =>
    confirmDelete({
      id: "mail-alias-dialog",
      title: `Delete the alias ${alias.alias}?`,
      body: `Mail to ${alias.alias}@${data.domain} is refused from now on; ${alias.target}'s mailbox keeps what already arrived.`,
      confirmLabel: "Delete alias",
      path: `${ALIASES}/${encodeURIComponent(alias.alias)}`,
      onDeleted: () => {
        ctx.flash(`The alias ${alias.alias} was deleted.`);
        reload();
      },
    });
  const table = data.aliases.length
    ? dataTable({
        id: "mail-aliases-table",
        caption: "Aliases",
        headings: ["Address", "Delivers to", "Added", "Actions"],
        rows: data.aliases.map((a) => aliasRow(a, data.domain, remove)),
      })
    : h("p", { class: "empty", id: "mail-aliases-empty" }, "No aliases yet.");
  return h(
    "section",
    { class: "card", id: "mail-aliases-card", "aria-labelledby": "mail-aliases-title" },
    h("div", { class: "card-header" }, h("h2", { id: "mail-aliases-title" }, "Mail: aliases")),
    h("p", { class: "card-lead muted" }, `More addresses at ${data.domain}, each delivering into a mailbox.`),
    table,
    h("h3", { class: "subhead" }, "Add an alias"),
    addForm(data.mailboxes, data.domain, ctx, reload),
  );
}
