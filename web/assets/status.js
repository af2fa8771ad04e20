// #/status: the cell, picd's version and uptime, and every subsystem's state with its reason.

import { api } from "./api.js";
import { busy, formatDuration, h, replace } from "./dom.js";
import { alertRegion, setAlert } from "./forms.js";

const REFRESH_SECONDS = 15;
const STATE_LABELS = { ok: "OK", degraded: "Degraded", unavailable: "Unavailable" };
const SUBSYSTEM_NAMES = { wireguard: "WireGuard", dns: "DNS", caddy: "Caddy", nftables: "nftables", docker: "Docker", storage: "Storage" };

export function badge(state, labels = STATE_LABELS) {
  return h("span", { class: `badge badge-${state}` }, labels[state] || state);
}

function stat(label, ...value) {
  return h(
    "div",
    { class: "stat" },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value" }, ...value),
  );
}

function render(data) {
  const cell = data.cell || {};
  const subsystems = data.subsystems || [];
  const unhealthy = subsystems.filter((s) => s.state !== "ok").length;
  return [
    h(
      "div",
      { class: "stat-grid" },
      stat("Overall", badge(data.overall)),
      stat("Cell", cell.name || "—", h("div", { class: "muted small" }, cell.domain || "")),
      stat("Version", data.version),
      stat("Uptime", formatDuration(data.uptime_seconds)),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "subsystems-title" },
      h(
        "div",
        { class: "card-header" },
        h("h2", { id: "subsystems-title" }, "Subsystems"),
        h(
          "span",
          { class: "muted small" },
          unhealthy ? `${unhealthy} of ${subsystems.length} need attention` : `All ${subsystems.length} running`,
        ),
      ),
      h(
        "ul",
        { class: "subsystems", id: "subsystems" },
        subsystems.map((s) =>
          h(
            "li",
            { "data-subsystem": s.name },
            h("span", { class: "subsystem-name" }, SUBSYSTEM_NAMES[s.name] || s.name),
            badge(s.state),
            h(
              "span",
              { class: "subsystem-reason" },
              s.reason || (s.state === "ok" ? "Running normally" : "No reason given"),
            ),
          ),
        ),
      ),
    ),
  ];
}

export function mount(root, _params, ctx) {
  const alert = alertRegion("status-alert");
  const body = h("div", { id: "status-body" }, h("p", { class: "loading" }, "Loading…"));
  const updated = h("span", { class: "muted small" });
  const refresh = h("button", { type: "button", class: "btn btn-small", id: "status-refresh" }, "Refresh");
  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Status"), h("p", {}, "How the cell and each of its subsystems are doing.")),
      h("div", { class: "toolbar" }, updated, refresh),
    ),
    alert,
    body,
  );

  async function load() {
    try {
      const data = await api("/api/status");
      setAlert(alert, "");
      replace(body, render(data));
      ctx.setCell(data.cell);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      setAlert(alert, error.message);
    }
  }

  refresh.addEventListener("click", () => busy(refresh, load));
  load();
  const timer = setInterval(load, REFRESH_SECONDS * 1000);
  return { destroy: () => clearInterval(timer) };
}
