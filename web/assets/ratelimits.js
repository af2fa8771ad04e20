// The Firewall page's rate limits: rules on the cell's ports (block, rate per source and per
// port, allow only the allow list) with what each dropped, their add form, and the templates
// that make a rule with one click (and a port, where the template takes one).

import { api, ApiError } from "./api.js";
import { busy, cell, dataTable, formatBytes, h, replace } from "./dom.js";
import { alertRegion, clearErrors, field, selectField, setAlert, showErrors } from "./forms.js";
import {
  PORT_MAX,
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

const API = "/api/routing/rate-limits";
const PPS_MAX = 10_000_000;
const TYPES = [
  { value: "rate_limit", label: "Rate limit" },
  { value: "block", label: "Block the ports" },
  { value: "allow_only", label: "Allow only listed addresses" },
];
const PROTOCOLS = ["tcp", "udp", "icmp", "any"].map((p) => ({ value: p, label: p === "any" ? "Any" : p.toUpperCase() }));

function limitText(rule) {
  if (rule.rule_type === "block") return "blocked to everyone";
  if (rule.rule_type === "allow_only") return "allow list only";
  const parts = [];
  if (rule.max_pps) parts.push(`${countText(rule.max_pps)}/s per source`);
  if (rule.max_port_pps) parts.push(`${countText(rule.max_port_pps)}/s in all`);
  return parts.join(", ");
}

function limitRow(rule, onDelete) {
  return h(
    "tr",
    { "data-limit": rule.id },
    cell("Name", {}, rule.name),
    cell("Match", {}, h("code", {}, matchText(rule.protocol, rule.port_start, rule.port_end))),
    cell("Limit", {}, limitText(rule)),
    cell(
      "Dropped",
      { class: "nowrap" },
      h(
        "span",
        { class: "traffic" },
        `${countText(rule.packets_dropped)} packets`,
        h("span", { class: "muted small" }, formatBytes(rule.bytes_dropped)),
      ),
    ),
    cell("Status", {}, statusBadge(rule.status)),
    cell("Actions", { class: "row-actions" }, deleteButton(`rl-delete-${rule.id}`, `rate limit ${rule.name}`, () => onDelete(rule))),
  );
}

function limitsTable(rules, onDelete) {
  if (rules.length === 0) {
    return h("p", { class: "empty" }, "No rate limits yet. Apply a template or add one below.");
  }
  return dataTable({
    id: "rl-table",
    caption: "Rate-limit rules",
    headings: ["Name", "Match", "Limit", "Dropped", "Status", "Actions"],
    rows: rules.map((r) => limitRow(r, onDelete)),
  });
}

function readLimit(inputs) {
  const body = { name: inputs.name.value.trim(), protocol: inputs.protocol.value, rule_type: inputs.type.value };
  const start = readPort(inputs.portStart);
  const end = readPort(inputs.portEnd);
  if (start !== undefined) body.port_start = start;
  if (end !== undefined) body.port_end = end;
  if (body.rule_type === "rate_limit") {
    const rate = { min: 1, max: PPS_MAX, what: "a whole number" };
    const perSource = readNumber(inputs.perSource, rate);
    const perPort = readNumber(inputs.perPort, rate);
    if (perSource !== undefined) body.max_pps = perSource;
    if (perPort !== undefined) body.max_port_pps = perPort;
  }
  return body;
}

function addForm(onAdded) {
  const alert = alertRegion("rl-add-alert");
  const wrappers = {
    name: field({ id: "rl-name", name: "name", label: "Name", placeholder: "Voice chat" }),
    protocol: selectField({ id: "rl-protocol", name: "protocol", label: "Protocol", options: PROTOCOLS, value: "udp" }),
    type: selectField({ id: "rl-type", name: "rule_type", label: "Kind", options: TYPES, value: "rate_limit" }),
    portStart: field({ id: "rl-port-start", name: "port_start", label: "Port", inputmode: "numeric", placeholder: "9987" }),
    portEnd: field({ id: "rl-port-end", name: "port_end", label: "To port (optional)", inputmode: "numeric" }),
    perSource: field({ id: "rl-max-pps", name: "max_pps", label: "Packets/s per source", inputmode: "numeric", placeholder: "500" }),
    perPort: field({ id: "rl-max-port-pps", name: "max_port_pps", label: "Packets/s in all", inputmode: "numeric", placeholder: "5000" }),
  };
  const inputs = Object.fromEntries(Object.entries(wrappers).map(([k, w]) => [k, control(w)]));
  const rates = h("div", { class: "grid-2", id: "rl-rates" }, wrappers.perSource, wrappers.perPort);
  inputs.type.addEventListener("change", () => {
    rates.hidden = inputs.type.value !== "rate_limit";
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "rl-add-submit" }, "Add rate limit");
  const form = h(
    "form",
    { id: "rl-add-form", novalidate: true },
    h("div", { class: "grid-3" }, wrappers.name, wrappers.protocol, wrappers.type),
    h("div", { class: "grid-2" }, wrappers.portStart, wrappers.portEnd),
    rates,
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  postOnSubmit({
    form,
    alert,
    submit,
    path: API,
    read: () => readLimit(inputs),
    onSaved: (rule) => {
      for (const input of [inputs.name, inputs.portStart, inputs.portEnd]) input.value = "";
      onAdded(rule);
      inputs.name.focus();
    },
  });
  return h("div", {}, alert, form);
}

/** One template: what it does, its port (prefilled with its default) and Apply. */
function templateCard(template, onApplied) {
  const id = `tpl-${template.id}`;
  const alert = alertRegion(`${id}-alert`);
  const port = field({
    id: `${id}-port`,
    name: "port",
    label: template.default_port ? `Port (default ${template.default_port})` : "Port (required)",
    inputmode: "numeric",
    value: template.default_port ? String(template.default_port) : "",
  });
  const portInput = control(port);
  const submit = h(
    "button",
    { type: "submit", class: "btn", id: `${id}-apply`, "aria-label": `Apply ${template.title}` },
    "Apply",
  );
  const form = h(
    "form",
    { class: "template", id, "data-template": template.id, novalidate: true },
    h(
      "div",
      { class: "template-head" },
      h("h3", {}, template.title),
      h(
        "span",
        { class: "tags" },
        h("span", { class: "tag" }, template.protocol),
        h("span", { class: "tag" }, template.category),
      ),
    ),
    h("p", { class: "muted small" }, template.description),
    alert,
    port,
  );
  // Apply sits beside the input, under the field's label; the error line stays below both.
  const row = h("div", { class: "input-row" });
  portInput.replaceWith(row);
  row.append(portInput, submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    let value;
    try {
      value = readNumber(portInput, { min: 1, max: PORT_MAX, what: "a port" });
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      return;
    }
    busy(submit, async () => {
      try {
        const rule = await api(`/api/routing/templates/${encodeURIComponent(template.id)}/apply`, {
          method: "POST",
          body: value === undefined ? {} : { port: value },
        });
        onApplied(template, rule);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  return form;
}

/** The templates card and the rate limits card; `load` reloads the rules. */
export function rateLimitSections(ctx, onRulesChanged) {
  const alert = alertRegion("rl-alert");
  const list = h("div", { id: "rl-list" }, h("p", { class: "loading" }, "Loading…"));
  const templates = h("div", { class: "templates", id: "templates" }, h("p", { class: "loading" }, "Loading…"));

  const onDelete = (rule) =>
    confirmDelete({
      id: "rl-delete-dialog",
      title: "Delete rate limit?",
      body: h("p", {}, "Delete ", h("strong", {}, rule.name), ` (${matchText(rule.protocol, rule.port_start, rule.port_end)}, ${limitText(rule)})?`),
      confirmLabel: "Delete rate limit",
      path: `${API}/${encodeURIComponent(rule.id)}`,
      onDeleted: () => {
        ctx.flash(`The rate limit ${rule.name} was deleted.`);
        load();
      },
    });

  async function load() {
    try {
      const data = await api(API);
      replace(list, limitsTable(data.rules, onDelete));
      setAlert(alert, "");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setAlert(alert, error.message);
    }
  }

  const applied = (template, rule) => {
    ctx.flash(`${rule.name} was added.`);
    if (template.kind === "firewall") onRulesChanged();
    else load();
  };

  async function loadTemplates() {
    try {
      const data = await api("/api/routing/templates");
      replace(templates, data.templates.map((t) => templateCard(t, applied)));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(templates, h("p", { class: "alert alert-error" }, error.message));
    }
  }

  const limits = h(
    "section",
    { class: "card", id: "rl-card", "aria-labelledby": "rl-title" },
    h("div", { class: "card-header" }, h("h2", { id: "rl-title" }, "Rate limits")),
    h(
      "p",
      { class: "muted small card-lead" },
      "Checked before connection tracking, on packets to the cell's ports: floods are cut early.",
    ),
    alert,
    list,
    h("h3", { class: "subhead" }, "Add a rate limit"),
    addForm((rule) => {
      ctx.flash(`The rate limit ${rule.name} was added.`);
      load();
    }),
  );
  const templatesCard = h(
    "section",
    { class: "card", id: "templates-card", "aria-labelledby": "templates-title" },
    h("h2", { id: "templates-title" }, "Templates"),
    h("p", { class: "muted small card-lead" }, "Common protections in one click. Each makes an ordinary rule you can delete."),
    templates,
  );
  // Templates do not change while picd runs: loaded once, so a refresh keeps a typed port.
  return { elements: [templatesCard, limits], load, loadTemplates };
}
