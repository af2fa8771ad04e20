// #/audit: the audit log, filtered and paged, with chain verification and CSV export. The
// filters live in the hash (#/audit?actor=admin&offset=50), so a view can be bookmarked and
// the browser's back button steps through earlier pages.

import { api, ApiError, queryString } from "./api.js";
import { busy, formatTime, h, replace } from "./dom.js";
import {
  alertRegion,
  clearErrors,
  errorLine,
  field,
  fromLocalInput,
  setAlert,
  showErrors,
  toLocalInput,
} from "./forms.js";
import { badge } from "./status.js";

const TEXT_FILTERS = [
  { name: "actor", label: "Actor", placeholder: "admin" },
  { name: "action", label: "Action", placeholder: "config.update" },
  { name: "target_type", label: "Target type", placeholder: "config" },
  { name: "target_id", label: "Target ID", placeholder: "cell" },
];
const TIME_FILTERS = [
  { name: "since", label: "Since" },
  { name: "until", label: "Until" },
];
const RESULTS = ["success", "failure", "denied"];
const RESULT_LABELS = { success: "Success", failure: "Failure", denied: "Denied" };
const PAGE_SIZES = [25, 50, 100, 200];
const DEFAULT_PAGE_SIZE = 50;

function filterForm(onApply, onClear) {
  const inputs = {};
  const text = TEXT_FILTERS.map((spec) => {
    const element = field({ ...spec, id: `audit-${spec.name}` });
    inputs[spec.name] = element.querySelector("input");
    return element;
  });
  const result = h(
    "select",
    { id: "audit-result", "data-field": "result", "data-label": "Result", "aria-describedby": "audit-result-error" },
    h("option", { value: "" }, "Any result"),
    RESULTS.map((r) => h("option", { value: r }, RESULT_LABELS[r])),
  );
  inputs.result = result;
  const times = TIME_FILTERS.map((spec) => {
    const element = field({ ...spec, id: `audit-${spec.name}`, type: "datetime-local" });
    inputs[spec.name] = element.querySelector("input");
    return element;
  });
  const form = h(
    "form",
    { class: "filters", id: "audit-filters", novalidate: true, role: "search", "aria-label": "Filter entries" },
    text,
    h("div", { class: "field" }, h("label", { for: "audit-result" }, "Result"), result, errorLine("audit-result")),
    times,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, "Apply filters"),
      h("button", { type: "button", class: "btn btn-quiet", onclick: onClear }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onApply();
  });

  return {
    form,
    read() {
      const filters = {};
      for (const spec of TEXT_FILTERS) filters[spec.name] = inputs[spec.name].value.trim();
      filters.result = result.value;
      for (const spec of TIME_FILTERS) filters[spec.name] = fromLocalInput(inputs[spec.name].value);
      return filters;
    },
    fill(params) {
      for (const spec of TEXT_FILTERS) inputs[spec.name].value = params.get(spec.name) || "";
      result.value = params.get("result") || "";
      for (const spec of TIME_FILTERS) inputs[spec.name].value = toLocalInput(params.get(spec.name));
    },
  };
}

function detailText(detail) {
  if (detail === null || detail === undefined) return "";
  if (typeof detail === "object" && Object.keys(detail).length === 0) return "";
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

function entryRow(entry) {
  const cell = (label, attrs, ...content) => h("td", { "data-label": label, ...attrs }, ...content);
  const detail = detailText(entry.detail);
  return h(
    "tr",
    { "data-id": entry.id },
    cell("Time", { class: "nowrap" }, h("time", { datetime: entry.time, title: entry.time }, formatTime(entry.time))),
    cell("Actor", {}, entry.actor),
    cell("Action", {}, h("code", {}, entry.action)),
    cell(
      "Target",
      {},
      h(
        "span",
        {},
        h("span", { class: "target-type" }, entry.target_type),
        entry.target_id ? h("span", { class: "target-id" }, entry.target_id) : null,
      ),
    ),
    cell("Result", {}, badge(entry.result, RESULT_LABELS)),
    cell("Client", { class: "nowrap" }, entry.client_addr),
    cell("Detail", { class: "detail" }, detail ? h("code", {}, detail) : h("span", { class: "muted" }, "—")),
  );
}

function entriesTable(entries) {
  if (entries.length === 0) {
    return h("p", { class: "empty" }, "No entries match these filters.");
  }
  const headings = ["Time", "Actor", "Action", "Target", "Result", "Client", "Detail"];
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "entries", id: "audit-entries" },
      h("caption", { class: "visually-hidden" }, "Audit log entries, newest first"),
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, entries.map(entryRow)),
    ),
  );
}

function verifyMessage(report) {
  if (report.valid) {
    return [`The chain is intact: ${report.checked} entries checked.`, "ok"];
  }
  const reason = report.reason ? `: ${report.reason}` : "";
  return [`The chain is broken at entry ${report.first_bad_id}${reason} (${report.checked} entries checked).`, "error"];
}

export function mount(root, initialParams) {
  let params = new URLSearchParams();
  const alert = alertRegion("audit-alert");
  const verifyResult = h("div", { class: "alert", id: "verify-result", role: "status" });
  const verifyButton = h("button", { type: "button", class: "btn", id: "verify-chain" }, "Verify chain");
  const download = h(
    "a",
    { class: "btn", id: "download-csv", href: "/api/audit/export?format=csv", download: "" },
    "Download CSV",
  );
  const summary = h("p", { class: "muted small", id: "audit-summary", "aria-live": "polite" });
  const results = h("div", { id: "audit-results" }, h("p", { class: "loading" }, "Loading…"));
  const pager = h("div", { class: "pager" });
  const entriesCard = h(
    "section",
    { class: "card", "aria-labelledby": "audit-entries-title" },
    h("div", { class: "card-header" }, h("h2", { id: "audit-entries-title" }, "Entries"), summary),
    results,
    pager,
  );

  const filters = filterForm(
    () => navigate({ ...filters.read(), limit: params.get("limit"), offset: "" }),
    () => navigate({ limit: params.get("limit") }),
  );

  // On a phone the filters would fill the first screen: they start folded unless in use.
  const activeCount = h("span", { class: "muted small" });
  const filterPanel = h(
    "details",
    { class: "card filter-panel", id: "audit-filter-panel" },
    h("summary", {}, "Filters ", activeCount),
    filters.form,
  );
  filterPanel.open = window.matchMedia("(min-width: 721px)").matches;

  function navigate(next) {
    window.location.hash = `#/audit${queryString(next)}`;
  }

  function filterValues() {
    const values = {};
    for (const key of [...TEXT_FILTERS, ...TIME_FILTERS].map((f) => f.name).concat("result")) {
      values[key] = params.get(key) || "";
    }
    return values;
  }

  function renderPager(total, limit, offset) {
    const go = (newOffset, newLimit = limit) =>
      navigate({ ...filterValues(), limit: newLimit === DEFAULT_PAGE_SIZE ? "" : newLimit, offset: newOffset || "" });
    const size = h(
      "select",
      { id: "audit-page-size", "aria-label": "Entries per page", onchange: (e) => go(0, Number(e.target.value)) },
      PAGE_SIZES.map((n) => h("option", { value: n, selected: n === limit }, `${n} per page`)),
    );
    replace(
      pager,
      h("span", { class: "muted small" }, `Page ${Math.floor(offset / limit) + 1} of ${Math.ceil(total / limit)}`),
      h(
        "div",
        { class: "pager-buttons" },
        size,
        h(
          "button",
          {
            type: "button",
            class: "btn btn-small",
            id: "audit-prev",
            disabled: offset <= 0,
            onclick: () => go(Math.max(0, offset - limit)),
          },
          "Previous",
        ),
        h(
          "button",
          {
            type: "button",
            class: "btn btn-small",
            id: "audit-next",
            disabled: offset + limit >= total,
            onclick: () => go(offset + limit),
          },
          "Next",
        ),
      ),
    );
  }

  // Quick paging can have two requests in flight; only the latest may render.
  let latest = 0;

  async function load() {
    const request = ++latest;
    const limit = Number(params.get("limit")) || DEFAULT_PAGE_SIZE;
    const offset = Number(params.get("offset")) || 0;
    const query = { ...filterValues(), limit, offset };
    download.setAttribute("href", `/api/audit/export${queryString({ format: "csv", ...filterValues() })}`);
    clearErrors(filters.form, alert);
    try {
      const page = await api(`/api/audit${queryString(query)}`);
      if (request !== latest) return;
      summary.textContent = page.entries.length
        ? `Showing ${page.offset + 1}–${page.offset + page.entries.length} of ${page.total} entries`
        : `${page.total} entries`;
      // Paging rebuilds the pager: keep the keyboard on the button that was used, and show
      // the new page from its first row.
      const pagerFocus = pager.contains(document.activeElement) ? document.activeElement.id : null;
      replace(results, entriesTable(page.entries));
      if (page.total > 0) {
        renderPager(page.total, page.limit, page.offset);
      } else {
        replace(pager);
      }
      if (pagerFocus) {
        const button = document.getElementById(pagerFocus);
        (button && !button.disabled ? button : pager.querySelector("select"))?.focus({ preventScroll: true });
        entriesCard.scrollIntoView({ block: "start" });
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (request !== latest) return;
      replace(results);
      replace(pager);
      summary.textContent = "";
      showErrors(filters.form, error, alert);
    }
  }

  verifyButton.addEventListener("click", () =>
    busy(verifyButton, async () => {
      try {
        const [text, kind] = verifyMessage(await api("/api/audit/verify"));
        setAlert(verifyResult, text, kind);
      } catch (error) {
        setAlert(verifyResult, error.message, "error");
      }
    }),
  );

  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Audit log"), h("p", {}, "Every change to the cell, in a tamper-evident hash chain.")),
      h("div", { class: "toolbar" }, verifyButton, download),
    ),
    verifyResult,
    filterPanel,
    alert,
    entriesCard,
  );

  function update(next) {
    params = next;
    filters.fill(params);
    const active = Object.values(filterValues()).filter(Boolean).length;
    activeCount.textContent = active ? `· ${active} active` : "";
    filterPanel.open = filterPanel.open || active > 0;
    load();
  }
  update(initialParams);
  return { update };
}
