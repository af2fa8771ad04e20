// The Firewall page's rules: the table in the order nftables evaluates it (system rules first,
// marked and without a Delete button: the API refuses to delete them), the add form, and the
// delete question.

import { api, ApiError } from "./api.js";
import { cell, dataTable, formatBytes, h, replace } from "./dom.js";
import { alertRegion, checkbox, errorLine, field, selectField, setAlert } from "./forms.js";
import {
  Refused,
  confirmDelete,
  control,
  countText,
  deleteButton,
  matchText,
  postOnSubmit,
  readNumber,
  readPort,
  statusBadge,
} from "./fwshared.js";

const API = "/api/routing/firewall";
const CHAINS = [
  { value: "input", label: "Input (to the cell)" },
  { value: "forward", label: "Forward (peers' traffic)" },
  { value: "output", label: "Output (from the cell)" },
];
const PROTOCOLS = ["tcp", "udp", "icmp", "any"].map((p) => ({ value: p, label: p === "any" ? "Any" : p.toUpperCase() }));
const ACTIONS = [
  { value: "drop", label: "Drop" },
  { value: "reject", label: "Reject" },
  { value: "accept", label: "Accept" },
  { value: "limit", label: "Limit (drop over a rate)" },
];
const UNITS = ["second", "minute", "hour"].map((u) => ({ value: u, label: `per ${u}` }));
const STATES = ["new", "established", "related"];
const LIMIT_RATE_MAX = 1_000_000;

function actionText(rule) {
  if (rule.action !== "limit") return rule.action;
  return `limit ${countText(rule.limit_rate)}/${rule.limit_unit}`;
}

function ruleRow(rule, onDelete) {
  const name = rule.is_system
    ? h("span", { class: "rule-name" }, rule.name, h("span", { class: "tag" }, "system"))
    : h("span", { class: "rule-name" }, rule.name);
  return h(
    "tr",
    { "data-rule": rule.id, "data-system": rule.is_system ? "true" : null },
    cell("Name", {}, name),
    cell("Chain", {}, rule.chain),
    cell(
      "Match",
      {},
      h(
        "span",
        { class: "rule-match" },
        h("code", {}, matchText(rule.protocol, rule.port_start, rule.port_end)),
        rule.conntrack ? h("span", { class: "muted small" }, `state ${rule.conntrack.replaceAll(",", ", ")}`) : null,
      ),
    ),
    cell("Action", {}, h("span", { class: `action action-${rule.action}` }, actionText(rule))),
    cell(
      "Counted",
      { class: "nowrap" },
      h(
        "span",
        { class: "traffic" },
        `${countText(rule.packets_total)} packets`,
        h("span", { class: "muted small" }, formatBytes(rule.bytes_total)),
      ),
    ),
    cell("Status", {}, statusBadge(rule.status)),
    cell(
      "Actions",
      { class: "row-actions" },
      rule.is_system
        ? h("span", { class: "muted small" }, "Built in")
        : deleteButton(`fw-delete-${rule.id}`, `rule ${rule.name}`, () => onDelete(rule)),
    ),
  );
}

function rulesTable(rules, onDelete) {
  return dataTable({
    id: "fw-rules-table",
    caption: "Firewall rules, in the order they are evaluated",
    headings: ["Name", "Chain", "Match", "Action", "Counted", "Status", "Actions"],
    rows: rules.map((r) => ruleRow(r, onDelete)),
  });
}

function conntrackField() {
  return h(
    "fieldset",
    { id: "fw-conntrack", "data-field": "conntrack", "data-label": "Connection state", "aria-describedby": "fw-conntrack-hint fw-conntrack-error" },
    h("legend", {}, "Connection state (optional)"),
    h(
      "div",
      { class: "check-row" },
      STATES.map((s) => checkbox({ id: `fw-state-${s}`, label: s, value: s })),
    ),
    h("p", { class: "hint", id: "fw-conntrack-hint" }, "None ticked: the rule matches packets in any state."),
    errorLine("fw-conntrack"),
  );
}

/** The request body from the form, or Refused when a number cannot be sent. */
function readRule(inputs) {
  const body = {
    name: inputs.name.value.trim(),
    chain: inputs.chain.value,
    protocol: inputs.protocol.value,
    action: inputs.action.value,
  };
  const start = readPort(inputs.portStart);
  const end = readPort(inputs.portEnd);
  if (start !== undefined) body.port_start = start;
  if (end !== undefined) body.port_end = end;
  if (body.action === "limit") {
    const rate = readNumber(inputs.rate, { min: 1, max: LIMIT_RATE_MAX, what: "a whole number" });
    if (rate !== undefined) body.limit_rate = rate;
    body.limit_unit = inputs.unit.value;
  }
  const states = STATES.filter((s) => document.getElementById(`fw-state-${s}`).checked);
  if (states.length) body.conntrack = states.join(",");
  return body;
}

function addForm(onAdded) {
  const alert = alertRegion("fw-add-alert");
  const wrappers = {
    name: field({ id: "fw-name", name: "name", label: "Name", placeholder: "Game server" }),
    chain: selectField({ id: "fw-chain", name: "chain", label: "Chain", options: CHAINS, value: "input" }),
    protocol: selectField({ id: "fw-protocol", name: "protocol", label: "Protocol", options: PROTOCOLS, value: "tcp" }),
    portStart: field({
      id: "fw-port-start",
      name: "port_start",
      label: "Port",
      inputmode: "numeric",
      placeholder: "443",
      hint: "TCP or UDP only. Empty for every port.",
    }),
    portEnd: field({
      id: "fw-port-end",
      name: "port_end",
      label: "To port (optional)",
      inputmode: "numeric",
      hint: "For a range; empty for one port.",
    }),
    action: selectField({ id: "fw-action", name: "action", label: "Action", options: ACTIONS, value: "drop" }),
    rate: field({ id: "fw-limit-rate", name: "limit_rate", label: "Rate (packets)", inputmode: "numeric", placeholder: "50" }),
    unit: selectField({ id: "fw-limit-unit", name: "limit_unit", label: "Unit", options: UNITS, value: "second" }),
  };
  const inputs = Object.fromEntries(Object.entries(wrappers).map(([k, w]) => [k, control(w)]));
  const limitRow = h("div", { class: "grid-2", id: "fw-limit", hidden: true }, wrappers.rate, wrappers.unit);
  inputs.action.addEventListener("change", () => {
    limitRow.hidden = inputs.action.value !== "limit";
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "fw-add-submit" }, "Add rule");
  const form = h(
    "form",
    { id: "fw-add-form", novalidate: true },
    h("div", { class: "grid-3" }, wrappers.name, wrappers.chain, wrappers.protocol),
    h("div", { class: "grid-3" }, wrappers.portStart, wrappers.portEnd, wrappers.action),
    limitRow,
    conntrackField(),
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  postOnSubmit({
    form,
    alert,
    submit,
    path: API,
    read: () => readRule(inputs),
    onSaved: (rule) => {
      for (const input of [inputs.name, inputs.portStart, inputs.portEnd]) input.value = "";
      onAdded(rule);
      inputs.name.focus();
    },
  });
  return h("div", {}, alert, form);
}

/** The rules card: its table (reloaded by `load`) and the add form. */
export function rulesSection(ctx) {
  const alert = alertRegion("fw-rules-alert");
  const list = h("div", { id: "fw-rules" }, h("p", { class: "loading" }, "Loading…"));
  const summary = h("span", { class: "muted small", id: "fw-rules-summary" });

  const onDelete = (rule) =>
    confirmDelete({
      id: "fw-delete-dialog",
      title: "Delete rule?",
      body: h(
        "p",
        {},
        "Delete the rule ",
        h("strong", {}, rule.name),
        ` (${rule.chain}, ${matchText(rule.protocol, rule.port_start, rule.port_end)}, ${actionText(rule)})? `,
        "Its counters go with it.",
      ),
      confirmLabel: "Delete rule",
      path: `${API}/${encodeURIComponent(rule.id)}`,
      onDeleted: () => {
        ctx.flash(`The rule ${rule.name} was deleted.`);
        load();
      },
    });

  async function load() {
    try {
      const data = await api(API);
      const own = data.rules.filter((r) => !r.is_system).length;
      summary.textContent = `${data.rules.length - own} built in · ${own} of yours`;
      replace(list, rulesTable(data.rules, onDelete));
      setAlert(alert, "");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setAlert(alert, error.message);
    }
  }

  const element = h(
    "section",
    { class: "card", id: "fw-rules-card", "aria-labelledby": "fw-rules-title" },
    h("div", { class: "card-header" }, h("h2", { id: "fw-rules-title" }, "Firewall rules"), summary),
    alert,
    list,
    h("h3", { class: "subhead", id: "fw-add-title" }, "Add a rule"),
    addForm((rule) => {
      ctx.flash(`The rule ${rule.name} was added.`);
      load();
    }),
  );
  return { element, load };
}
