// A stacked bar chart drawn as inline SVG (no library, nothing fetched): one bar per time
// bucket, passed packets below and dropped ones on top. Colours come from classes in
// app.css (the CSP allows no inline style); sizes are drawn in pixels of the container's
// width, so the labels keep their size on a phone.

const NS = "http://www.w3.org/2000/svg";
const HEIGHT = 200;
const PAD = { top: 12, right: 8, bottom: 26, left: 48 };

function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** 1, 2 or 5 times a power of ten, at least `value`: a round top for the axis. */
function niceCeiling(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 5, 10].find((m) => m * power >= value);
  return step * power;
}

/** 1234567 -> "1.2M": axis labels stay short. */
export function shortCount(n) {
  if (n >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/**
 * Draws `points` ({ at: ms, passed, dropped }, in time order) into `container`, replacing
 * what was there. `timeLabel(ms)` names a bucket; `summary` is read out in place of the picture;
 * `barTitle(point)` is a bar's tooltip (by default its passed and dropped packets).
 */
export function drawBars(container, { id, points, timeLabel, summary, barTitle }) {
  const title = barTitle || ((p) => `${timeLabel(p.at)}: ${p.passed} passed, ${p.dropped} dropped`);
  const width = Math.max(280, Math.floor(container.clientWidth || 640));
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const top = niceCeiling(Math.max(0, ...points.map((p) => p.passed + p.dropped)));
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const slot = plotW / Math.max(1, points.length);
  const barW = Math.max(1, slot * (slot > 6 ? 0.72 : 0.9));

  const chart = el("svg", {
    id,
    class: "chart",
    width,
    height: HEIGHT,
    viewBox: `0 0 ${width} ${HEIGHT}`,
    role: "img",
    "aria-label": summary,
  });
  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction;
    chart.append(
      el("line", { class: "chart-grid", x1: PAD.left, x2: width - PAD.right, y1: y(value), y2: y(value) }),
      el("text", { class: "chart-label", x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end" }, shortCount(value)),
    );
  }
  points.forEach((p, i) => {
    const x = PAD.left + i * slot + (slot - barW) / 2;
    const bar = el("g", { class: "chart-bar", "data-at": new Date(p.at).toISOString() });
    bar.append(el("title", {}, title(p)));
    if (p.passed > 0) {
      bar.append(el("rect", { class: "chart-passed", x, width: barW, y: y(p.passed), height: y(0) - y(p.passed) }));
    }
    if (p.dropped > 0) {
      const base = y(p.passed);
      bar.append(el("rect", { class: "chart-dropped", x, width: barW, y: y(p.passed + p.dropped), height: base - y(p.passed + p.dropped) }));
    }
    chart.append(bar);
  });
  // First, middle and last bucket under the axis; fewer when they would overlap.
  const ticks = points.length > 2 && plotW > 320 ? [0, Math.floor((points.length - 1) / 2), points.length - 1] : [0, points.length - 1];
  for (const i of [...new Set(ticks)]) {
    if (!points[i]) continue;
    const x = PAD.left + i * slot + slot / 2;
    const anchor = i === 0 ? "start" : i === points.length - 1 ? "end" : "middle";
    const edge = anchor === "start" ? PAD.left : anchor === "end" ? width - PAD.right : x;
    chart.append(el("text", { class: "chart-label", x: edge, y: HEIGHT - 8, "text-anchor": anchor }, timeLabel(points[i].at)));
  }
  if (!points.some((p) => p.passed + p.dropped > 0)) {
    chart.append(
      el(
        "text",
        { class: "chart-empty", x: PAD.left + plotW / 2, y: PAD.top + plotH / 2, "text-anchor": "middle" },
        "No traffic recorded in this window",
      ),
    );
  }
  container.replaceChildren(chart);
  return chart;
}
