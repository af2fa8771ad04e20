// Building DOM without innerHTML: every value from the API lands in a text node, so a
// hostile audit detail or cell name can never become markup.

/**
 * h("p", { class: "hint", onclick: fn, hidden: true }, "text", child) -> element.
 * `on*` keys become listeners, `true`/`false` toggle boolean attributes, null is skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (value === true) {
      element.setAttribute(key, "");
    } else {
      element.setAttribute(key, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    if (Array.isArray(child)) {
      append(element, child);
    } else if (child instanceof Node) {
      element.appendChild(child);
    } else {
      element.appendChild(document.createTextNode(String(child)));
    }
  }
}

/** Replaces an element's children. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/**
 * A table that turns into one card per row on a phone (the .entries styles): `rows` are <tr>
 * whose cells come from `cell`, which labels each for that layout.
 */
export function dataTable({ id, caption, headings, rows }) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "entries", id },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
  );
}

/** A table cell labelled for the phone layout of dataTable. */
export function cell(label, attrs, ...content) {
  return h("td", { "data-label": label, ...attrs }, ...content);
}

/** The picd mark: a cell (hexagon) around a dot. Drawn with attributes, no style. */
export function brandMark() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("aria-hidden", "true");
  const hexagon = document.createElementNS(ns, "path");
  hexagon.setAttribute("d", "M12 2.5 20.5 7.25v9.5L12 21.5 3.5 16.75v-9.5Z");
  hexagon.setAttribute("fill", "none");
  hexagon.setAttribute("stroke", "currentColor");
  hexagon.setAttribute("stroke-width", "2");
  hexagon.setAttribute("stroke-linejoin", "round");
  const dot = document.createElementNS(ns, "circle");
  dot.setAttribute("cx", "12");
  dot.setAttribute("cy", "12");
  dot.setAttribute("r", "3");
  dot.setAttribute("fill", "currentColor");
  svg.append(hexagon, dot);
  return h("span", { class: "brand-mark" }, svg);
}

/** A time from the API (RFC 3339, UTC) in the reader's local time. */
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso || "—";
  }
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds || 0));
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${minutes} min`;
  if (minutes > 0) return `${minutes} min ${s % 60} s`;
  return `${s} s`;
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 1536 -> "1.5 KiB": traffic counters as people read them. */
export function formatBytes(bytes) {
  let value = Math.max(0, Number(bytes) || 0);
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** How long ago an RFC 3339 time was: "just now", "4 min ago", "3 h ago", "2 d ago". */
export function formatAgo(iso, now = Date.now()) {
  const time = new Date(iso).getTime();
  if (!iso || Number.isNaN(time)) return "—";
  const seconds = Math.max(0, Math.floor((now - time) / 1000));
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  if (seconds < 30 * 86400) return `${Math.floor(seconds / 86400)} d ago`;
  return formatTime(iso);
}

/** Marks a button busy (spinner, disabled) while `work` runs. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
