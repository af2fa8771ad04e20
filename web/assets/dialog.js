// Modal dialogs made on demand: a question (delete, revoke, rotate) with Cancel and one
// action. The action's errors stay inside the dialog, next to its inputs.

import { ApiError } from "./api.js";
import { busy, h } from "./dom.js";
import { alertRegion, clearErrors, showErrors } from "./forms.js";

/**
 * Opens a dialog. `body` is text or nodes (inputs with data-field get their errors inline);
 * `action` runs on confirm and may throw an ApiError, which is shown in the dialog. The
 * dialog is removed from the page when it closes. Returns the <dialog>.
 */
export function openDialog({ id, title, body, confirmLabel, danger = false, action }) {
  const alert = alertRegion(`${id}-alert`);
  const confirm = h(
    "button",
    { type: "submit", class: danger ? "btn btn-danger" : "btn btn-primary", id: `${id}-confirm` },
    confirmLabel,
  );
  const cancel = h("button", { type: "button", class: "btn", id: `${id}-cancel` }, "Cancel");
  const form = h(
    "form",
    { class: "dialog-body", novalidate: true },
    h("h2", { id: `${id}-title` }, title),
    alert,
    typeof body === "string" ? h("p", {}, body) : body,
    h("div", { class: "actions" }, cancel, confirm),
  );
  const dialog = h("dialog", { id, "aria-labelledby": `${id}-title` }, form);
  cancel.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    busy(confirm, async () => {
      try {
        await action();
        dialog.close();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  // The safe choice has the focus: Enter on an open dialog must not delete anything.
  cancel.focus();
  return dialog;
}
