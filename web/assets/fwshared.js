// What the Firewall page's sections share: ports and whole numbers read from inputs (marked
// on the input when they cannot be sent), how a rule's match and state read, and the delete
// question every list asks.

import { api, ApiError } from "./api.js";
import { busy, h } from "./dom.js";
import { clearErrors, markInvalid, setAlert, showErrors } from "./forms.js";
import { openDialog } from "./dialog.js";

export const PORT_MAX = 65535;

/** Something typed that cannot be sent: already marked on its input. */
export class Refused extends Error {}

/**
 * Makes `form` an add form: on submit `read()` builds the body (throwing Refused once it has
 * marked a field), the body is POSTed to `path` while `submit` shows busy, and `onSaved` gets
 * the stored row; the API's field errors land under their fields, the rest in `alert`.
 */
export function postOnSubmit({ form, alert, submit, path, read, onSaved }) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    let body;
    try {
      body = read();
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      setAlert(alert, "Please correct the field marked below.");
      return;
    }
    busy(submit, async () => {
      try {
        onSaved(await api(path, { method: "POST", body }));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
}

/**
 * A whole number from an input: undefined when empty, the number when it is one in
 * [min, max]; otherwise the input is marked and Refused thrown (the API would only answer a
 * number out of its type's range with a 422 that names no field).
 */
export function readNumber(input, { min, max, what }) {
  const text = input.value.trim();
  if (text === "") return undefined;
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    markInvalid(input, `must be ${what} from ${min} to ${max.toLocaleString("en")}`).focus();
    throw new Refused();
  }
  return value;
}

export function readPort(input) {
  return readNumber(input, { min: 1, max: PORT_MAX, what: "a port" });
}

/** "tcp 27015–27016", "udp 53", "any protocol". */
export function matchText(protocol, start, end) {
  const proto = protocol === "any" ? "any protocol" : protocol;
  if (!start) return proto;
  return end > start ? `${proto} ${start}–${end}` : `${proto} ${start}`;
}

const APPLIED = new Set(["active", "loaded"]);

/** A row's state: applied, or still waiting for the table to be rebuilt. */
export function statusBadge(status) {
  if (status === "pending_remove") return h("span", { class: "badge badge-degraded" }, "Removing");
  const applied = APPLIED.has(status);
  return h("span", { class: applied ? "badge badge-ok" : "badge badge-degraded" }, applied ? "Active" : "Pending");
}

export function countText(n) {
  return Number(n || 0).toLocaleString("en");
}

/** The Delete button of a row; `what` names the row for screen readers. */
export function deleteButton(id, what, onclick) {
  return h(
    "button",
    { type: "button", class: "btn btn-small btn-danger", id, "aria-label": `Delete ${what}`, onclick },
    "Delete",
  );
}

/** Asks before deleting; on confirm, DELETEs `path` and calls `onDeleted`. */
export function confirmDelete({ id, title, body, confirmLabel, path, onDeleted }) {
  openDialog({
    id,
    title,
    body,
    confirmLabel,
    danger: true,
    action: async () => {
      await api(path, { method: "DELETE" });
      onDeleted();
    },
  });
}

/** The control inside a field wrapper made by forms.js. */
export const control = (wrapper) => wrapper.querySelector("input, select, textarea");
