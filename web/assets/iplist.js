// The Firewall page's IP lists: addresses and networks blocked (optionally until a time) or
// allowed past the rate-limit rules, with each entry's state and the time it has left.

import { api, ApiError } from "./api.js";
import { cell, dataTable, formatDuration, formatTime, h, replace } from "./dom.js";
import { alertRegion, field, fromLocalInput, markInvalid, selectField, setAlert } from "./forms.js";
import { Refused, confirmDelete, control, deleteButton, postOnSubmit, statusBadge } from "./fwshared.js";

const API = "/api/routing/ip-list";
const LISTS = [
  { value: "blacklist", label: "Block" },
  { value: "whitelist", label: "Allow" },
];
const EXPIRY = [
  { value: "", label: "Never" },
  { value: "600", label: "In 10 minutes" },
  { value: "3600", label: "In 1 hour" },
  { value: "86400", label: "In 1 day" },
  { value: "604800", label: "In 7 days" },
  { value: "2592000", label: "In 30 days" },
  { value: "at", label: "At a date and time…" },
];

/** "in 59 min 58 s" until an entry's expiry, or "never". */
function remaining(entry, now) {
  if (!entry.expires_at) return "never";
  const seconds = (new Date(entry.expires_at).getTime() - now) / 1000;
  return seconds > 0 ? `in ${formatDuration(seconds)}` : "now";
}

function entryRow(entry, onDelete, now) {
  const blocked = entry.list_type === "blacklist";
  return h(
    "tr",
    { "data-entry": entry.id, "data-address": entry.ip_address },
    cell("Address", {}, h("code", { class: "key" }, entry.ip_address)),
    cell("List", {}, h("span", { class: blocked ? "badge badge-unavailable" : "badge badge-ok" }, blocked ? "Blocked" : "Allowed")),
    cell("Reason", {}, entry.reason || h("span", { class: "muted" }, "—")),
    cell("Status", {}, statusBadge(entry.status)),
    cell(
      "Expires",
      {},
      h(
        "span",
        { class: "traffic" },
        h("span", { class: "expires", "data-expires": entry.expires_at || null }, remaining(entry, now)),
        entry.expires_at ? h("span", { class: "muted small" }, formatTime(entry.expires_at)) : null,
      ),
    ),
    cell(
      "Actions",
      { class: "row-actions" },
      entry.status === "pending_remove"
        ? null
        : deleteButton(`ip-delete-${entry.id}`, `${entry.ip_address} from the ${blocked ? "block" : "allow"} list`, () =>
            onDelete(entry),
          ),
    ),
  );
}

function entriesTable(entries, onDelete) {
  if (entries.length === 0) {
    return h("p", { class: "empty" }, "No addresses are blocked or allowed. Add one with the form below.");
  }
  const now = Date.now();
  return dataTable({
    id: "ip-list-table",
    caption: "Blocked and allowed addresses",
    headings: ["Address", "List", "Reason", "Status", "Expires", "Actions"],
    rows: entries.map((e) => entryRow(e, onDelete, now)),
  });
}

/** The expiry to send: none, a preset from now, or the typed local time (marked if unreadable). */
/** The expiry picked: undefined for never, an RFC 3339 time, or Refused (marked). */
function readExpiry(preset, at) {
  if (preset.value === "") return undefined;
  if (preset.value !== "at") return new Date(Date.now() + Number(preset.value) * 1000).toISOString();
  const value = fromLocalInput(at.value);
  if (!value) {
    markInvalid(at, "must be a date and time").focus();
    throw new Refused();
  }
  return value;
}

function addForm(onAdded) {
  const alert = alertRegion("ip-add-alert");
  const list = selectField({ id: "ip-list-type", name: "list_type", label: "List", options: LISTS, value: "blacklist" });
  const address = field({
    id: "ip-address",
    name: "ip_address",
    label: "Address or network",
    placeholder: "203.0.113.7 or 198.51.100.0/24",
  });
  const reason = field({ id: "ip-reason", name: "reason", label: "Reason (optional)", placeholder: "Scanning port 22" });
  const expiry = selectField({
    id: "ip-expiry",
    name: "expires_at",
    label: "Expires",
    options: EXPIRY,
    value: "",
    hint: "Only blocks expire; the kernel lifts them on time.",
  });
  const at = field({ id: "ip-expires-at", name: "expires_at_local", label: "Expires at (your time)", type: "datetime-local" });
  at.hidden = true;
  const [listInput, addressInput, reasonInput, expiryInput, atInput] = [list, address, reason, expiry, at].map(control);
  // The API names the expiry `expires_at`: its message lands on whichever control set it.
  const syncExpiry = () => {
    const allowed = listInput.value === "whitelist";
    expiryInput.disabled = allowed;
    if (allowed) expiryInput.value = "";
    at.hidden = expiryInput.value !== "at";
    expiryInput.setAttribute("data-field", at.hidden ? "expires_at" : "expires_at_preset");
    atInput.setAttribute("data-field", at.hidden ? "expires_at_local" : "expires_at");
  };
  listInput.addEventListener("change", syncExpiry);
  expiryInput.addEventListener("change", syncExpiry);
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "ip-add-submit" }, "Add address");
  const form = h(
    "form",
    { id: "ip-add-form", novalidate: true },
    h("div", { class: "grid-3" }, list, address, reason),
    h("div", { class: "grid-2" }, expiry, at),
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  const read = () => {
    const expires = readExpiry(expiryInput, atInput);
    const body = { list_type: listInput.value, ip_address: addressInput.value.trim() };
    if (reasonInput.value.trim()) body.reason = reasonInput.value.trim();
    if (expires) body.expires_at = expires;
    return body;
  };
  postOnSubmit({
    form,
    alert,
    submit,
    path: API,
    read,
    onSaved: (entry) => {
      addressInput.value = "";
      reasonInput.value = "";
      onAdded(entry);
      addressInput.focus();
    },
  });
  return h("div", {}, alert, form);
}

/** The IP lists card; `tick` refreshes the remaining times without a request. */
export function ipListSection(ctx) {
  const alert = alertRegion("ip-list-alert");
  const list = h("div", { id: "ip-list" }, h("p", { class: "loading" }, "Loading…"));
  const summary = h("span", { class: "muted small", id: "ip-list-summary" });
  let entries = [];

  const onDelete = (entry) =>
    confirmDelete({
      id: "ip-delete-dialog",
      title: entry.list_type === "blacklist" ? "Unblock address?" : "Remove allowed address?",
      body: h(
        "p",
        {},
        "Remove ",
        h("code", {}, entry.ip_address),
        entry.list_type === "blacklist" ? " from the block list? Its traffic reaches the cell again." : " from the allow list?",
      ),
      confirmLabel: "Remove",
      path: `${API}/${encodeURIComponent(entry.id)}`,
      onDeleted: () => {
        ctx.flash(`${entry.ip_address} was removed.`);
        load();
      },
    });

  async function load() {
    try {
      const data = await api(API);
      entries = data.entries;
      const kept = entries.filter((e) => e.status !== "pending_remove");
      const blocked = kept.filter((e) => e.list_type === "blacklist").length;
      summary.textContent = `${blocked} blocked · ${kept.length - blocked} allowed`;
      replace(list, entriesTable(entries, onDelete));
      setAlert(alert, "");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setAlert(alert, error.message);
    }
  }

  function tick() {
    const now = Date.now();
    for (const span of list.querySelectorAll(".expires[data-expires]")) {
      span.textContent = remaining({ expires_at: span.dataset.expires }, now);
    }
    // An entry that ran out is gone from the kernel; the API leaves it out now.
    if (entries.some((e) => e.expires_at && new Date(e.expires_at).getTime() <= now)) load();
  }

  const element = h(
    "section",
    { class: "card", id: "ip-list-card", "aria-labelledby": "ip-list-title" },
    h("div", { class: "card-header" }, h("h2", { id: "ip-list-title" }, "Blocked and allowed addresses"), summary),
    h(
      "p",
      { class: "muted small card-lead" },
      "Blocked sources are dropped before any rule; allowed ones pass the rate limits below.",
    ),
    alert,
    list,
    h("h3", { class: "subhead" }, "Add an address"),
    addForm((entry) => {
      ctx.flash(`${entry.ip_address} was added to the ${entry.list_type === "blacklist" ? "block" : "allow"} list.`);
      load();
    }),
  );
  return { element, load, tick };
}
