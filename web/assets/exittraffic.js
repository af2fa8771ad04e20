// The peer page's traffic through its exit: for a peer on an exit, what it sent out through
// the exit and got back over the last hour (from the per-minute rows of
// /api/routing/metrics?peer=), and since the exit's counter began, with a bar chart of the
// bytes per minute. A peer that goes straight out of the cell shows nothing: the cell counts
// no per-peer traffic there.

import { api, ApiError, queryString } from "./api.js";
import { formatBytes, h, replace } from "./dom.js";
import { drawBars } from "./chart.js";
import { countText } from "./fwshared.js";

const METRICS = "/api/routing/metrics";
const WINDOW_SECONDS = 3600;
const STEP_SECONDS = 60;

/** Every minute of the window, the ones without traffic (the API leaves them out) as zero. */
function minutes(buckets, from, to) {
  const step = STEP_SECONDS * 1000;
  const byStart = new Map(buckets.map((b) => [new Date(b.bucket).getTime(), b]));
  const out = [];
  for (let at = Math.floor(from / step) * step; at <= to; at += step) {
    const b = byStart.get(at);
    out.push({ at, passed: b ? b.bytes : 0, dropped: 0, packets: b ? b.packets : 0 });
  }
  return out;
}

const amount = (bytes, packets) => `${formatBytes(bytes)} · ${countText(packets)} packets`;

/** Exits whose traffic runs through a local proxy, where the forward chain sees none of it. */
const UNCOUNTED = new Set(["socks5", "http", "tor"]);

/**
 * The section for peer `name` on exit `exit` (an entry of /api/connectivity/peers), or null
 * for a direct peer. `connection` is the exit's connection (its name and type), if listed.
 */
export function exitTraffic(name, exit, connection) {
  if (!exit.connection) return null;
  const exitName = connection ? connection.name : "its exit";
  const totals = h("p", { id: "peer-exit-traffic-totals" }, h("span", { class: "loading" }, "Loading…"));
  const chartBox = h("div", { class: "chart-box", id: "peer-exit-traffic-chart" });
  const element = h(
    "section",
    { class: "exit-traffic", id: "peer-exit-traffic", "aria-labelledby": "peer-exit-traffic-title" },
    h("h3", { class: "subhead", id: "peer-exit-traffic-title" }, `Traffic through ${exitName}`),
    totals,
    h("p", { class: "muted small" }, "Bytes per minute over the last hour, out through the exit and back."),
    connection && UNCOUNTED.has(connection.type)
      ? h("p", { class: "hint", id: "peer-exit-traffic-uncounted" }, "Traffic through a proxy or Tor exit is not counted per peer.")
      : null,
    chartBox,
  );
  let shown = null;

  function draw() {
    if (!shown || !chartBox.isConnected) return;
    const timeLabel = (ms) => new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    const bytes = shown.reduce((n, p) => n + p.passed, 0);
    drawBars(chartBox, {
      id: "peer-exit-traffic-svg",
      points: shown,
      timeLabel,
      summary: `${name}'s bytes per minute through ${exitName} over the last hour: ${formatBytes(bytes)} in all.`,
      barTitle: (p) => `${timeLabel(p.at)}: ${amount(p.passed, p.packets)}`,
    });
  }

  async function load() {
    const to = Date.now();
    const from = to - WINDOW_SECONDS * 1000;
    const query = { peer: name, interval: "1m", from: new Date(from).toISOString(), to: new Date(to).toISOString() };
    try {
      const { buckets } = await api(`${METRICS}${queryString(query)}`);
      const bytes = buckets.reduce((n, b) => n + b.bytes, 0);
      const packets = buckets.reduce((n, b) => n + b.packets, 0);
      replace(
        totals,
        h("strong", { id: "peer-exit-traffic-hour" }, amount(bytes, packets)),
        " in the last hour",
        exit.traffic
          ? h("span", { class: "muted", id: "peer-exit-traffic-total" }, `; ${amount(exit.traffic.bytes, exit.traffic.packets)} since the exit's count began`)
          : null,
        ".",
      );
      shown = minutes(buckets, from, to);
      // Drawn once the section is on the page, so the chart takes its width.
      requestAnimationFrame(draw);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(totals, h("span", { class: "field-error" }, error.message));
    }
  }

  // Redrawn at the page's new width (a phone turned, a window resized); the listener goes
  // with the section.
  let resizeTimer = null;
  const onResize = () => {
    if (shown && !element.isConnected) {
      window.removeEventListener("resize", onResize);
      return;
    }
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(draw, 150);
  };
  window.addEventListener("resize", onResize);

  load();
  return element;
}
