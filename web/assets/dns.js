// #/dns: the cell's DNS zones and their records. The zone, the search text and the page live
// in the hash (#/dns?zone=home.example.&q=www&offset=50), so a view can be bookmarked and the
// back button steps through earlier pages. Records are added, edited and deleted one at a
// time; a zone file can be imported (good lines kept, the others listed) and exported.

import { api, ApiError, queryString } from "./api.js";
import { busy, cell, dataTable, h, replace } from "./dom.js";
import { alertRegion, clearErrors, errorLine, field, markInvalid, selectField, setAlert, showErrors } from "./forms.js";
import { openDialog } from "./dialog.js";

export const RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR"];
export const VIEW_OPTIONS = [
  { value: "public", label: "Public (everyone)" },
  { value: "internal", label: "Internal (peers only)" },
];
const PAGE_SIZE = 50;
const DATA_HINTS = {
  A: "An IPv4 address, e.g. 10.77.0.20",
  AAAA: "An IPv6 address, e.g. fd77:77::20",
  CNAME: "The name this one is an alias of, e.g. files.home.example.",
  MX: "Preference and mail server, e.g. 10 mail.home.example.",
  TXT: 'Quoted text, e.g. "v=spf1 -all"',
  SRV: "Priority, weight, port and target, e.g. 0 5 5060 sip.home.example.",
  CAA: 'Flags, tag and value, e.g. 0 issue "letsencrypt.org"',
  NS: "A name server, e.g. ns1.home.example.",
  PTR: "The name the address points to, e.g. host.home.example.",
};

const zoneApi = (zone, rest = "") => `/api/dns/zones/${encodeURIComponent(zone)}${rest}`;

/**
 * A TTL as typed: empty means the zone's default (left out), digits a number; anything else
 * is marked on the input and null is returned.
 */
function readTtl(input) {
  const text = input.value.trim();
  if (text === "") return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  markInvalid(input, "must be a whole number of seconds").focus();
  return null;
}

function recordRow(record, { onEdit, onDelete }) {
  return h(
    "tr",
    { "data-record": record.id, "data-name": record.name },
    cell("Name", { class: "record-name" }, h("code", {}, record.name)),
    cell("Type", {}, h("span", { class: "tag" }, record.type)),
    cell("TTL", { class: "nowrap" }, `${record.ttl} s`),
    cell("Data", { class: "record-data" }, h("code", {}, record.data)),
    cell(
      "View",
      {},
      h("span", { class: record.view === "internal" ? "badge badge-disabled" : "badge badge-ok" }, record.view),
    ),
    cell(
      "Actions",
      { class: "nowrap" },
      h(
        "span",
        { class: "row-actions" },
        h(
          "button",
          {
            type: "button",
            class: "btn btn-small",
            id: `dns-edit-${record.id}`,
            "aria-label": `Edit ${record.name} ${record.type}`,
            onclick: () => onEdit(record),
          },
          "Edit",
        ),
        h(
          "button",
          {
            type: "button",
            class: "btn btn-small btn-danger",
            id: `dns-delete-${record.id}`,
            "aria-label": `Delete ${record.name} ${record.type}`,
            onclick: () => onDelete(record),
          },
          "Delete",
        ),
      ),
    ),
  );
}

function recordsTable(records, actions, searching) {
  if (records.length === 0) {
    return h(
      "p",
      { class: "empty" },
      searching ? "No records match the search." : "No records in this zone yet. Add one with the form below.",
    );
  }
  return dataTable({
    id: "dns-records-table",
    caption: "DNS records",
    headings: ["Name", "Type", "TTL", "Data", "View", "Actions"],
    rows: records.map((r) => recordRow(r, actions)),
  });
}

function addForm(zone, onAdded) {
  const alert = alertRegion("dns-add-alert");
  const name = field({
    id: "dns-name",
    name: "name",
    label: "Name",
    placeholder: "www",
    hint: "@ for the zone itself, a name relative to it, or an absolute name inside it.",
  });
  const type = selectField({
    id: "dns-type",
    name: "type",
    label: "Type",
    options: RECORD_TYPES.map((t) => ({ value: t, label: t })),
    value: "A",
  });
  const ttl = field({
    id: "dns-ttl",
    name: "ttl",
    label: "TTL (seconds, optional)",
    inputmode: "numeric",
    hint: "Empty for the zone's default.",
  });
  const data = field({ id: "dns-data", name: "data", label: "Data", hint: DATA_HINTS.A });
  const view = selectField({ id: "dns-view", name: "view", label: "View", options: VIEW_OPTIONS, value: "public" });
  const input = (wrapper) => wrapper.querySelector("input, select");
  input(type).addEventListener("change", () => {
    wrapperHint(data).textContent = DATA_HINTS[input(type).value] || "";
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "dns-add-submit" }, "Add record");
  const form = h(
    "form",
    { id: "dns-add-form", novalidate: true },
    h("div", { class: "grid-3" }, name, type, ttl),
    h("div", { class: "grid-endpoint" }, data, view),
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const seconds = readTtl(input(ttl));
    if (seconds === null) {
      setAlert(alert, "Please correct the field marked below.");
      return;
    }
    const body = {
      name: input(name).value.trim(),
      type: input(type).value,
      data: input(data).value.trim(),
      view: input(view).value,
    };
    if (seconds !== undefined) body.ttl = seconds;
    busy(submit, async () => {
      try {
        const record = await api(zoneApi(zone, "/records"), { method: "POST", body });
        input(name).value = "";
        input(data).value = "";
        onAdded(record);
        input(name).focus();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  return h("div", {}, alert, form);
}

function wrapperHint(wrapper) {
  return wrapper.querySelector(".hint");
}

function importForm(zone, onImported) {
  const alert = alertRegion("dns-import-alert");
  const textarea = h("textarea", {
    id: "dns-import-text",
    class: "mono",
    rows: "6",
    spellcheck: "false",
    "data-field": "content",
    "data-label": "Zone file",
    "aria-describedby": "dns-import-text-hint dns-import-text-error",
    placeholder: "www 3600 IN A 10.77.0.20\nmail IN MX 10 mail.home.example.",
  });
  const result = h("div", { id: "dns-import-result", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "dns-import-submit" }, "Import");
  const form = h(
    "form",
    { id: "dns-import-form", novalidate: true },
    h(
      "div",
      { class: "field" },
      h("label", { for: "dns-import-text" }, "Zone file"),
      textarea,
      h(
        "p",
        { class: "hint", id: "dns-import-text-hint" },
        "BIND syntax, names relative to the zone. Records land in the public view; ones already there are skipped.",
      ),
      errorLine("dns-import-text"),
    ),
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    replace(result);
    if (!textarea.value.trim()) {
      markInvalid(textarea, "is empty: paste the records to import").focus();
      return;
    }
    busy(submit, async () => {
      try {
        const answer = await api(zoneApi(zone, "/import"), { method: "POST", body: { content: textarea.value } });
        replace(result, importResult(answer));
        if (answer.errors.length === 0) textarea.value = "";
        onImported(answer);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  return h("div", {}, alert, form, result);
}

function importResult(answer) {
  const parts = [`${answer.imported} imported`];
  if (answer.skipped_existing) parts.push(`${answer.skipped_existing} already present`);
  if (answer.errors.length) parts.push(`${answer.errors.length} refused`);
  if (answer.ignored && answer.ignored.length) parts.push(`${answer.ignored.length} ignored`);
  const kind = answer.errors.length ? "warn" : "ok";
  return h(
    "div",
    { class: `alert alert-${kind} import-result`, role: "status" },
    h("p", { id: "dns-import-summary" }, `${parts.join(", ")}.`),
    answer.errors.length
      ? h(
          "ul",
          { class: "import-errors", id: "dns-import-errors" },
          answer.errors.map((e) =>
            h("li", {}, h("strong", {}, `Line ${e.line}`), " ", h("code", {}, e.text), `: ${e.error}`),
          ),
        )
      : null,
    answer.ignored && answer.ignored.length
      ? h(
          "ul",
          { class: "import-errors" },
          answer.ignored.map((i) => h("li", {}, `Line ${i.line}: ${i.record} is managed by the cell, ignored`)),
        )
      : null,
  );
}

function editDialog(record, onSaved) {
  const ttl = field({
    id: "dns-edit-ttl",
    name: "ttl",
    label: "TTL (seconds)",
    inputmode: "numeric",
    value: String(record.ttl),
  });
  const data = field({
    id: "dns-edit-data",
    name: "data",
    label: "Data",
    value: record.data,
    hint: DATA_HINTS[record.type],
  });
  const view = selectField({
    id: "dns-edit-view",
    name: "view",
    label: "View",
    options: VIEW_OPTIONS,
    value: record.view,
  });
  const input = (wrapper) => wrapper.querySelector("input, select");
  openDialog({
    id: "dns-edit-dialog",
    title: `Edit ${record.name} ${record.type}`,
    body: h("div", {}, ttl, data, view),
    confirmLabel: "Save",
    action: async () => {
      const seconds = readTtl(input(ttl));
      // A refused TTL is already marked; keep the dialog open without a request.
      if (seconds === null) throw new ApiError(400, { error: "Please correct the field marked below.", fields: { ttl: "must be a whole number of seconds" } });
      const body = { data: input(data).value.trim(), view: input(view).value };
      if (seconds !== undefined) body.ttl = seconds;
      const saved = await api(zoneApi(record.zone, `/records/${encodeURIComponent(record.id)}`), {
        method: "PUT",
        body,
      });
      onSaved(saved);
    },
  });
}

function deleteDialog(record, onDeleted) {
  openDialog({
    id: "dns-delete-dialog",
    title: "Delete record?",
    body: h(
      "p",
      {},
      "Delete ",
      h("code", {}, `${record.name} ${record.type} ${record.data}`),
      record.view === "internal" ? " from the internal view" : "",
      "? Resolvers may keep answering with it until its TTL runs out. This cannot be undone.",
    ),
    confirmLabel: "Delete record",
    danger: true,
    action: async () => {
      await api(zoneApi(record.zone, `/records/${encodeURIComponent(record.id)}`), { method: "DELETE" });
      onDeleted(record);
    },
  });
}

export function mount(root, initialParams, ctx) {
  let params = initialParams;
  let zones = [];
  const alert = alertRegion("dns-alert");
  const exportLink = h("a", { class: "btn", id: "dns-export", download: "", href: "#/dns" }, "Export zone file");
  const zoneSelect = h("select", { id: "dns-zone", "aria-describedby": "dns-zone-info" });
  const zoneInfo = h("p", { class: "hint", id: "dns-zone-info" });
  const zoneField = h(
    "div",
    { class: "field zone-picker" },
    h("label", { for: "dns-zone" }, "Zone"),
    zoneSelect,
    zoneInfo,
  );
  const search = h("input", {
    id: "dns-search",
    type: "search",
    placeholder: "Name, address or text",
    autocomplete: "off",
    spellcheck: "false",
    "data-field": "q",
    "data-label": "Search",
  });
  const searchForm = h(
    "form",
    { class: "inline-form search-form", id: "dns-search-form", role: "search", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "dns-search" }, "Search all zones"), search),
    h(
      "div",
      { class: "toolbar" },
      h("button", { type: "submit", class: "btn", id: "dns-search-submit" }, "Search"),
      h("button", { type: "button", class: "btn btn-quiet", id: "dns-search-clear" }, "Clear"),
    ),
  );
  const summary = h("p", { class: "muted small", id: "dns-summary", "aria-live": "polite" });
  const results = h("div", { id: "dns-records" }, h("p", { class: "loading" }, "Loading…"));
  const pager = h("div", { class: "pager" });
  const recordsTitle = h("h2", { id: "dns-records-title" }, "Records");
  const addBody = h("div", {});
  const importBody = h("div", {});

  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "DNS"),
        h("p", {}, "The names the cell answers for: its zones and their records, for everyone or for peers only."),
      ),
      h("div", { class: "toolbar" }, exportLink),
    ),
    alert,
    h(
      "section",
      { class: "card", "aria-label": "Zone and search" },
      h("div", { class: "grid-2" }, zoneField, searchForm),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "dns-records-title" },
      h("div", { class: "card-header" }, recordsTitle, summary),
      results,
      pager,
    ),
    h(
      "section",
      { class: "card", id: "dns-add", "aria-labelledby": "dns-add-title" },
      h("h2", { id: "dns-add-title" }, "Add a record"),
      addBody,
    ),
    h(
      "section",
      { class: "card", id: "dns-import", "aria-labelledby": "dns-import-title" },
      h("h2", { id: "dns-import-title" }, "Import a zone file"),
      importBody,
    ),
  );

  function navigate(next) {
    window.location.hash = `#/dns${queryString(next)}`;
  }

  const currentZone = () => params.get("zone") || (zones[0] && zones[0].name) || "";

  zoneSelect.addEventListener("change", () => navigate({ zone: zoneSelect.value }));
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate({ zone: currentZone(), q: search.value.trim() });
  });
  document.getElementById("dns-search-clear").addEventListener("click", () => {
    search.value = "";
    navigate({ zone: currentZone() });
  });

  const actions = {
    onEdit: (record) =>
      editDialog(record, (saved) => {
        ctx.flash(`${saved.name} ${saved.type} was saved.`);
        refresh();
      }),
    onDelete: (record) =>
      deleteDialog(record, () => {
        ctx.flash(`${record.name} ${record.type} was deleted.`);
        refresh();
      }),
  };

  async function loadZones() {
    const data = await api("/api/dns/zones");
    zones = data.zones;
    const zone = currentZone();
    replace(
      zoneSelect,
      zones.map((z) => h("option", { value: z.name, selected: z.name === zone }, z.name)),
    );
    const info = zones.find((z) => z.name === zone);
    zoneInfo.textContent = info
      ? `Serial ${info.serial} · ${info.records} ${info.records === 1 ? "record" : "records"} · default TTL ${info.default_ttl} s`
      : "";
    return info;
  }

  function renderPager(total, limit, offset) {
    if (total <= limit) {
      replace(pager);
      return;
    }
    const go = (next) => navigate({ zone: currentZone(), offset: next || "" });
    replace(
      pager,
      h("span", { class: "muted small" }, `Page ${Math.floor(offset / limit) + 1} of ${Math.ceil(total / limit)}`),
      h(
        "div",
        { class: "pager-buttons" },
        h(
          "button",
          { type: "button", class: "btn btn-small", id: "dns-prev", disabled: offset <= 0, onclick: () => go(Math.max(0, offset - limit)) },
          "Previous",
        ),
        h(
          "button",
          { type: "button", class: "btn btn-small", id: "dns-next", disabled: offset + limit >= total, onclick: () => go(offset + limit) },
          "Next",
        ),
      ),
    );
  }

  // Quick paging can have two requests in flight; only the latest may render.
  let latest = 0;

  async function loadRecords() {
    const request = ++latest;
    const zone = currentZone();
    const q = params.get("q") || "";
    const offset = Number(params.get("offset")) || 0;
    clearErrors(searchForm);
    try {
      if (q) {
        const data = await api(`/api/dns/search${queryString({ q })}`);
        if (request !== latest) return;
        recordsTitle.textContent = "Search results";
        summary.textContent = `${data.records.length} ${data.records.length === 1 ? "record matches" : "records match"} “${q}” in all zones`;
        replace(results, recordsTable(data.records, actions, true));
        replace(pager);
      } else {
        const page = await api(`${zoneApi(zone, "/records")}${queryString({ limit: PAGE_SIZE, offset })}`);
        if (request !== latest) return;
        recordsTitle.textContent = "Records";
        summary.textContent = page.records.length
          ? `Showing ${offset + 1}–${offset + page.records.length} of ${page.total} · serial ${page.serial}`
          : `${page.total} records · serial ${page.serial}`;
        const pagerFocus = pager.contains(document.activeElement) ? document.activeElement.id : null;
        replace(results, recordsTable(page.records, actions, false));
        renderPager(page.total, PAGE_SIZE, offset);
        if (pagerFocus) {
          const button = document.getElementById(pagerFocus);
          (button && !button.disabled ? button : results)?.focus({ preventScroll: true });
        }
      }
      setAlert(alert, "");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (request !== latest) return;
      replace(results);
      replace(pager);
      summary.textContent = "";
      if (q) {
        showErrors(searchForm, error, alert);
      } else {
        setAlert(alert, error.message);
      }
    }
  }

  async function refresh() {
    try {
      await loadZones();
    } catch (error) {
      setAlert(alert, error.message);
    }
    await loadRecords();
  }

  let shownZone = null;

  async function update(next) {
    params = next;
    search.value = params.get("q") || "";
    try {
      await loadZones();
    } catch (error) {
      setAlert(alert, error.message);
      replace(results);
      return;
    }
    const zone = currentZone();
    if (!zone) {
      replace(results, h("p", { class: "empty" }, "There are no zones yet."));
      return;
    }
    exportLink.setAttribute("href", zoneApi(zone, "/export"));
    // The forms keep what was typed while paging or searching; a new zone gets fresh ones.
    if (zone !== shownZone) {
      shownZone = zone;
      replace(addBody, addForm(zone, (record) => {
        ctx.flash(`${record.name} ${record.type} was added.`);
        refresh();
      }));
      replace(importBody, importForm(zone, () => refresh()));
    }
    await loadRecords();
  }

  update(initialParams);
  return { update };
}
