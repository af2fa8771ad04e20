// The Firewall page's traffic: what reached the cell and what its rules dropped over the
// last 10 minutes, hour or day (from /api/routing/metrics/summary), the busiest ports, and a
// chart of the time buckets of /api/routing/metrics, for all traffic or one port.

import { api, ApiError, queryString } from "./api.js";
import { cell, dataTable, formatBytes, h, replace } from "./dom.js";
import { alertRegion, setAlert } from "./forms.js";
import { drawBars } from "./chart.js";
import { countText } from "./fwshared.js";

/** Each window, with the bucket size that gives it a readable number of bars. */
const WINDOWS = [
  { value: "10m", label: "10 min", seconds: 600, interval: "1m", step: 60, per: "minute", span: "the last 10 minutes" },
  { value: "1h", label: "1 hour", seconds: 3600, interval: "1m", step: 60, per: "minute", span: "the last hour" },
  { value: "24h", label: "24 hours", seconds: 86400, interval: "1h", step: 3600, per: "hour", span: "the last 24 hours" },
];

function stat(label, id, value, note) {
  return h(
    "div",
    { class: "stat" },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value", id }, value),
    note ? h("div", { class: "muted small" }, note) : null,
  );
}

function portsTable(ports) {
  if (ports.length === 0) {
    return h("p", { class: "empty", id: "traffic-ports-empty" }, "No traffic on the ports your rules name in this window.");
  }
  return dataTable({
    id: "traffic-ports",
    caption: "Busiest ports",
    headings: ["Port", "Passed", "Dropped"],
    rows: ports.map((p) =>
      h(
        "tr",
        { "data-port": p.port },
        cell("Port", {}, h("code", {}, p.port)),
        cell("Passed", { class: "nowrap" }, `${countText(p.packets_passed)} · ${formatBytes(p.bytes_passed)}`),
        cell("Dropped", { class: "nowrap" }, `${countText(p.packets_dropped)} · ${formatBytes(p.bytes_dropped)}`),
      ),
    ),
  });
}

/** Every bucket of the window, the empty ones (the API leaves them out) as zero. */
function points(buckets, span, from, to) {
  const step = span.step * 1000;
  const byStart = new Map(buckets.map((b) => [new Date(b.bucket).getTime(), b]));
  const out = [];
  for (let at = Math.floor(from / step) * step; at <= to; at += step) {
    const b = byStart.get(at);
    out.push({ at, passed: b ? b.packets_passed : 0, dropped: b ? b.packets_dropped : 0 });
  }
  return out;
}

export function trafficSection() {
  let current = WINDOWS[1];
  let port = "";
  let shown = null;
  let latest = 0;
  const alert = alertRegion("traffic-alert");
  const buttons = WINDOWS.map((w) =>
    h(
      "button",
      { type: "button", class: "btn btn-small", id: `traffic-window-${w.value}`, "aria-pressed": String(w === current), onclick: () => pick(w) },
      w.label,
    ),
  );
  const portSelect = h("select", { id: "traffic-port" }, h("option", { value: "" }, "All traffic"));
  portSelect.addEventListener("change", () => {
    port = portSelect.value;
    load();
  });
  const stats = h("div", { class: "stat-grid traffic-stats", id: "traffic-stats" });
  const chartBox = h("div", { class: "chart-box", id: "traffic-chart" });
  const ports = h("div", { id: "traffic-ports-box" });
  const chartTitle = h("h3", { class: "subhead", id: "traffic-chart-title" }, "Packets");

  function pick(w) {
    current = w;
    for (const [i, b] of buttons.entries()) b.setAttribute("aria-pressed", String(WINDOWS[i] === w));
    load();
  }

  function renderPorts(summary) {
    const known = summary.top_ports.map((p) => String(p.port));
    if (port && !known.includes(port)) known.push(port);
    replace(
      portSelect,
      h("option", { value: "" }, "All traffic"),
      known.map((p) => h("option", { value: p, selected: p === port }, `Port ${p}`)),
    );
  }

  function draw() {
    if (!shown) return;
    const { list, w } = shown;
    const passed = list.reduce((n, p) => n + p.passed, 0);
    const dropped = list.reduce((n, p) => n + p.dropped, 0);
    const peak = Math.max(0, ...list.map((p) => p.passed + p.dropped));
    const timeLabel = (ms) =>
      new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    drawBars(chartBox, {
      id: "traffic-svg",
      points: list,
      timeLabel,
      summary: `Packets per ${w.per} over ${w.span}${port ? ` on port ${port}` : ""}: ${countText(passed)} passed, ${countText(dropped)} dropped; the busiest ${w.per} had ${countText(peak)}.`,
    });
  }

  async function load() {
    const request = ++latest;
    const w = current;
    const to = Date.now();
    const from = to - w.seconds * 1000;
    try {
      const [summary, history] = await Promise.all([
        api(`/api/routing/metrics/summary${queryString({ window: w.value })}`),
        api(
          `/api/routing/metrics${queryString({
            from: new Date(from).toISOString(),
            to: new Date(to).toISOString(),
            interval: w.interval,
            port,
          })}`,
        ),
      ]);
      if (request !== latest) return;
      replace(
        stats,
        stat("Passed", "traffic-passed", countText(summary.total_passed), formatBytes(summary.total_bytes_passed)),
        stat("Dropped", "traffic-dropped", countText(summary.total_dropped), formatBytes(summary.total_bytes_dropped)),
      );
      renderPorts(summary);
      replace(ports, portsTable(summary.top_ports));
      chartTitle.textContent = `Packets per ${w.per}${port ? `, port ${port}` : ""}`;
      shown = { list: points(history.buckets, w, from, to), w };
      draw();
      setAlert(alert, "");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (request === latest) setAlert(alert, error.message);
    }
  }

  let resizeTimer = null;
  const onResize = () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(draw, 150);
  };
  window.addEventListener("resize", onResize);

  const element = h(
    "section",
    { class: "card", id: "traffic-card", "aria-labelledby": "traffic-title" },
    h(
      "div",
      { class: "card-header" },
      h("h2", { id: "traffic-title" }, "Traffic"),
      h("div", { class: "toolbar", role: "group", "aria-label": "Time window" }, buttons),
    ),
    h("p", { class: "muted small card-lead" }, "Packets that reached the cell, and those its rules and lists dropped."),
    alert,
    stats,
    h(
      "div",
      { class: "chart-head" },
      chartTitle,
      h("div", { class: "field chart-port" }, h("label", { for: "traffic-port" }, "Show"), portSelect),
    ),
    chartBox,
    h(
      "p",
      { class: "chart-legend muted small", "aria-hidden": "true" },
      h("span", { class: "legend-passed" }, "Passed"),
      h("span", { class: "legend-dropped" }, "Dropped"),
    ),
    h("h3", { class: "subhead" }, "Busiest ports"),
    ports,
  );
  return {
    element,
    load,
    destroy: () => {
      window.removeEventListener("resize", onResize);
      clearTimeout(resizeTimer);
    },
  };
}
