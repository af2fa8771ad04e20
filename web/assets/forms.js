// Form fields and the display of the API's errors: a 400's `fields` map lands next to the
// input whose data-field matches ("subnet_v4", "cell.subnet_v4", "upstreams[0]"); anything
// without a matching input goes into the form's alert.

import { h } from "./dom.js";

/** A labelled text input with its hint and its (initially hidden) error line. */
export function field({ id, name, label, type = "text", hint, placeholder, autocomplete, inputmode, value }) {
  const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
  const input = h("input", {
    id,
    name: id,
    type,
    "data-field": name,
    "data-label": label,
    placeholder,
    autocomplete: autocomplete || "off",
    inputmode,
    autocapitalize: "none",
    spellcheck: "false",
    "aria-describedby": described,
  });
  input.value = value ?? "";
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    errorLine(id),
  );
}

/** A labelled <select> with its hint and error line, in the markup of `field`. */
export function selectField({ id, name, label, options, value, hint }) {
  const select = h(
    "select",
    {
      id,
      name: id,
      "data-field": name,
      "data-label": label,
      "aria-describedby": [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" "),
    },
    options.map((o) => h("option", { value: o.value, selected: o.value === value }, o.label)),
  );
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    select,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    errorLine(id),
  );
}

/** A checkbox with its label, hint and error line. */
export function checkbox({ id, name, label, hint, checked = false, value }) {
  const input = h("input", {
    id,
    name: id,
    type: "checkbox",
    value,
    "data-field": name,
    "data-label": label,
    "aria-describedby": [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" "),
  });
  input.checked = checked;
  return h(
    "div",
    { class: "check" },
    input,
    h(
      "div",
      {},
      h("label", { for: id }, label),
      hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
      errorLine(id),
    ),
  );
}

/**
 * One choice of a few (radio buttons) in a fieldset that carries the field name, so an error
 * on the field lands under the group. `options` are { value, label, hint? }.
 */
export function choices({ id, name, label, options, value }) {
  return h(
    "fieldset",
    { id, class: "choices", "data-field": name, "data-label": label, "aria-describedby": `${id}-error` },
    h("legend", {}, label),
    options.map((option) => {
      const optionId = `${id}-${option.value}`;
      const input = h("input", {
        id: optionId,
        type: "radio",
        name: id,
        value: option.value,
        "aria-describedby": option.hint ? `${optionId}-hint` : null,
      });
      input.checked = option.value === value;
      return h(
        "div",
        { class: "check" },
        input,
        h(
          "div",
          {},
          h("label", { for: optionId }, option.label),
          option.hint ? h("p", { class: "hint", id: `${optionId}-hint` }, option.hint) : null,
        ),
      );
    }),
    errorLine(id),
  );
}

/** The value of the checked radio button inside `root`, or "". */
export function checkedValue(root) {
  const checked = root.querySelector("input[type=radio]:checked");
  return checked ? checked.value : "";
}

/** RFC 3339 (as the API carries it) to a datetime-local value, in local time. */
export function toLocalInput(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A datetime-local value (local time) to RFC 3339 in UTC; "" when empty or unreadable. */
export function fromLocalInput(value) {
  const date = new Date(value);
  return value && !Number.isNaN(date.getTime()) ? date.toISOString() : "";
}

/**
 * List inputs typed into one box ("names", "ips"): the API names each item ("names[2]"); the
 * messages are gathered under the box, whose data-field is the list's name.
 */
export function foldListErrors(error, lists) {
  const fields = {};
  for (const [name, message] of Object.entries(error.fields || {})) {
    const list = lists.find((l) => name === l || name.startsWith(`${l}[`));
    if (list) {
      fields[list] = fields[list] ? `${fields[list]}; ${message}` : message;
    } else {
      fields[name] = message;
    }
  }
  error.fields = fields;
  return error;
}

/** The error line of the control with this id; showErrors finds it by `${id}-error`. */
export function errorLine(id) {
  return h("p", { class: "field-error", id: `${id}-error`, hidden: true });
}

/** The form-level message: an always-present live region, empty (and so invisible) at rest. */
export function alertRegion(id) {
  return h("div", { class: "alert alert-error", id, role: "alert" });
}

export function setAlert(alert, text, kind = "error") {
  alert.className = `alert alert-${kind}`;
  alert.textContent = text || "";
}

export function clearErrors(root, alert) {
  for (const invalid of root.querySelectorAll('[aria-invalid="true"]')) {
    invalid.removeAttribute("aria-invalid");
  }
  for (const line of root.querySelectorAll(".field-error")) {
    line.textContent = "";
    line.hidden = true;
  }
  if (alert) {
    setAlert(alert, "");
  }
}

/**
 * The API's messages continue a sentence about the field ("must be …", "is required"); next
 * to the input they read as "IPv4 subnet must be …". Others ("host bits are set; …") stand
 * alone and only need a capital letter.
 */
function sentence(label, message) {
  const text = /^(must|is|are|does|has|cannot|should)\b/.test(message) && label ? `${label} ${message}` : message;
  const capitalised = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capitalised) ? capitalised : `${capitalised}.`;
}

/** Marks a field invalid with a message; returns the control to focus. */
export function markInvalid(target, message) {
  const line = document.getElementById(`${target.id}-error`);
  if (line) {
    line.textContent = sentence(target.dataset.label, message);
    line.hidden = false;
  }
  if (target.matches("input, select, textarea")) {
    target.setAttribute("aria-invalid", "true");
    return target;
  }
  return target.querySelector("input, select, textarea, button");
}

/** Shows an ApiError on a form: field messages inline, the rest in the alert. */
export function showErrors(root, error, alert) {
  clearErrors(root, alert);
  const fields = Object.entries(error.fields || {});
  const unmatched = [];
  let first = null;
  for (const [name, message] of fields) {
    const target = root.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (!target) {
      unmatched.push(`${name} ${message}`);
      continue;
    }
    const control = markInvalid(target, message);
    first = first || control;
  }
  let text;
  if (fields.length === 0) {
    text = error.message;
  } else if (unmatched.length === 0) {
    text = fields.length === 1 ? "Please correct the field marked below." : "Please correct the fields marked below.";
  } else {
    text = `Please correct: ${unmatched.join("; ")}.`;
  }
  setAlert(alert, text);
  if (first) {
    first.focus();
  }
}
