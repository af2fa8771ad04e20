// Secrets the API shows exactly once (an API key's token, a certificate's private key, an
// invitation link): a read-only box, a copy button, and a word that it will not come back.
// Also what keeps them from coming back: wiped when the page is left (logout included), and
// a page the browser restores from its back/forward cache is loaded afresh.

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

/**
 * Removes every secret from the page: the secret fields (one-time tokens, keys, invitation
 * links), the onboarding blocks with their QR codes (a peer's private key), open dialogs.
 */
export function wipeSecrets(root = document) {
  for (const box of root.querySelectorAll(".secret-value")) box.value = "";
  for (const element of root.querySelectorAll(".secret, .one-time, .onboard, .qr-frame")) {
    element.remove();
  }
  for (const dialog of root.querySelectorAll("dialog[open]")) dialog.close();
}

/**
 * For every page that may show a secret: leaving it wipes the secrets (so a copy the browser
 * keeps for Back holds none), and a page restored from the back/forward cache reloads, which
 * asks picd again (and after logout, lands on the login page).
 */
export function guardAgainstBack() {
  window.addEventListener("pagehide", () => wipeSecrets());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      wipeSecrets();
      window.location.reload();
    }
  });
}
