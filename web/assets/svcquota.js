// A quota typed as people think of one (a number and a unit, "2 GiB") and sent as the API
// takes it (bytes); and how a mailbox's use reads against its limit, with a bar.

import { ApiError } from "./api.js";
import { formatBytes, h } from "./dom.js";
import { errorLine } from "./forms.js";

const UNITS = [
  ["TiB", 2 ** 40],
  ["GiB", 2 ** 30],
  ["MiB", 2 ** 20],
  ["KiB", 2 ** 10],
  ["bytes", 1],
];
/** Past this share of its limit a mailbox's bar turns amber, and red past the next. */
const NEARLY_FULL = 0.8;
const FULL = 0.95;

/** 2147483648 -> [2, "GiB"]: the largest unit the figure is a whole number of. */
function inUnits(bytes) {
  const [unit, size] = UNITS.find(([, size]) => bytes % size === 0) || UNITS[UNITS.length - 1];
  return [bytes / size, unit];
}

/**
 * A number input and a unit select in one field, the input carrying the API's field name so
 * its errors land under it. `read()` returns the bytes, or throws an ApiError on the field
 * (shown like the API's own) when what is typed is not a number; the range is the API's to
 * check, so its message is the one the owner reads.
 */
export function quotaField({ id, name, label, bytes, hint }) {
  const [amount, unit] = inUnits(bytes);
  const input = h("input", {
    id,
    name: id,
    type: "text",
    inputmode: "decimal",
    autocomplete: "off",
    "data-field": name,
    "data-label": label,
    "aria-describedby": [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" "),
  });
  input.value = String(amount);
  const select = h(
    "select",
    { id: `${id}-unit`, name: `${id}-unit`, "aria-label": `${label}: unit` },
    UNITS.map(([u]) => h("option", { value: u, selected: u === unit }, u)),
  );
  const element = h(
    "div",
    { class: "field field-short" },
    h("label", { for: id }, label),
    h("div", { class: "input-row quota-input" }, input, select),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    errorLine(id),
  );
  const read = () => {
    const text = input.value.trim().replace(",", ".");
    if (!/^\d+(\.\d+)?$/.test(text)) {
      const message = "must be a number, such as 500 (MiB) or 2 (GiB)";
      throw new ApiError(400, { error: "invalid input", code: "validation_failed", fields: { [name]: message } });
    }
    const size = UNITS.find(([u]) => u === select.value)[1];
    // Past 2^53 JSON carries no exact whole number (the API would refuse the body without
    // naming the field); so large a figure is out of the API's range all the same, and its
    // refusal then lands under the field.
    return Math.min(Math.round(Number(text) * size), Number.MAX_SAFE_INTEGER);
  };
  return { element, input, read };
}

/** "12.0 KiB of 1.0 GiB" and a bar: amber when nearly full, red when full. */
export function usageBar(used, limit, label) {
  const share = limit > 0 ? used / limit : 0;
  const percent = share >= 0.01 || used === 0 ? Math.round(share * 100) : "<1";
  const level = share >= FULL ? "full" : share >= NEARLY_FULL ? "nearly-full" : "ok";
  return h(
    "div",
    { class: `usage usage-${level}` },
    h("meter", {
      class: "usage-bar",
      min: 0,
      max: limit,
      value: Math.min(used, limit),
      low: Math.round(limit * NEARLY_FULL),
      high: Math.round(limit * FULL),
      optimum: 0,
      "aria-label": label,
    }),
    h("span", { class: "usage-text" }, `${formatBytes(used)} of ${formatBytes(limit)} (${percent}%)`),
  );
}
