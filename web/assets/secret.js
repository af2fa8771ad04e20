// Secrets the API shows exactly once (an API key's token, a certificate's private key, an
// invitation link): a read-only box, a copy button, and a word that it will not come back.

import { h } from "./dom.js";

const COPIED_SECONDS = 4;

/** Copies the text of `source` (an input or textarea) and says whether it worked. */
export function copyButton(source, id) {
  const status = h("span", { class: "copy-status", role: "status" });
  let timer = null;
  const button = h(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      id,
      "aria-controls": source.id,
      onclick: async () => {
        let copied = false;
        try {
          await navigator.clipboard.writeText(source.value);
          copied = true;
        } catch {
          // No clipboard API outside a secure context (plain http to a LAN address): select
          // the text and fall back to the older command.
          source.focus();
          source.select();
          copied = document.execCommand("copy");
        }
        status.textContent = copied ? "Copied" : "Selected: press Ctrl+C to copy";
        clearTimeout(timer);
        timer = setTimeout(() => (status.textContent = ""), COPIED_SECONDS * 1000);
      },
    },
    "Copy",
  );
  return h("span", { class: "copy" }, button, status);
}

/**
 * A labelled read-only value with a copy button. `multiline` makes it a textarea (PEM
 * blocks); otherwise a one-line input (tokens, links).
 */
export function secretField({ id, label, value, multiline = false, rows = 8, hint }) {
  const attrs = {
    id,
    readonly: true,
    class: "secret-value",
    spellcheck: "false",
    autocomplete: "off",
    "aria-describedby": hint ? `${id}-hint` : null,
  };
  const box = multiline ? h("textarea", { ...attrs, rows, wrap: "off" }) : h("input", { ...attrs, type: "text" });
  box.value = value;
  box.addEventListener("focus", () => box.select());
  return h(
    "div",
    { class: "field secret" },
    h("div", { class: "secret-head" }, h("label", { for: id }, label), copyButton(box, `${id}-copy`)),
    box,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
  );
}

/** The "shown once" warning that goes with a secret. */
export function onceWarning(text) {
  return h("div", { class: "alert alert-warn", role: "note" }, h("strong", {}, "Shown only once. "), text);
}
