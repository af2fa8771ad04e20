// A service account's credentials as a person uses them: the URL, the username and the
// password (hidden until Show), each with a copy button, and how to set up a client. Shared
// by the admin's credentials dialog and the peer portal's "Your services".

import { h } from "./dom.js";
import { copyButton } from "./secret.js";

/** A labelled read-only value with a copy button; `extra` goes beside the button. */
function copyField({ id, label, value, type = "text", extra }) {
  const box = h("input", {
    id,
    type,
    readonly: true,
    class: "secret-value",
    spellcheck: "false",
    autocomplete: "off",
  });
  box.value = value ?? "";
  box.addEventListener("focus", () => box.select());
  return h(
    "div",
    { class: "field secret" },
    h("div", { class: "secret-head" }, h("label", { for: id }, label), h("span", { class: "copy" }, extra, copyButton(box, `${id}-copy`))),
    box,
  );
}

/** The password box: type=password until Show, so a glance at the screen does not read it. */
function passwordField(id, value) {
  const toggle = h(
    "button",
    { type: "button", class: "btn btn-small", id: `${id}-show`, "aria-controls": id, "aria-pressed": "false" },
    "Show",
  );
  const wrapper = copyField({ id, label: "Password", value, type: "password", extra: toggle });
  const box = wrapper.querySelector("input");
  toggle.addEventListener("click", () => {
    const shown = box.type === "password";
    box.type = shown ? "text" : "password";
    toggle.textContent = shown ? "Hide" : "Show";
    toggle.setAttribute("aria-pressed", String(shown));
  });
  return wrapper;
}

/** What a mail app asks for, per server: protocol, host, port and how it is encrypted. */
const TLS_NAMES = { implicit: "SSL/TLS", starttls: "STARTTLS" };
const PROTOCOL_NAMES = { imaps: "Incoming (IMAP)", submission: "Outgoing (SMTP)" };

function serverList(creds, prefix) {
  const servers = (creds.endpoints ?? []).filter((e) => e.host && e.tls);
  if (servers.length === 0) return null;
  return h(
    "dl",
    { class: "servers", id: `${prefix}servers` },
    ...servers.flatMap((e) => [
      h("dt", {}, PROTOCOL_NAMES[e.protocol] ?? e.protocol),
      h("dd", { id: `${prefix}server-${e.name}` }, `${e.host}, port ${e.port}, ${TLS_NAMES[e.tls] ?? e.tls}`),
    ]),
  );
}

/**
 * The credentials of one account (an answer of .../credentials or an item of
 * /api/peer/service-credentials). `prefix` makes the ids unique on the page.
 */
export function credentialFields(creds, prefix) {
  return h(
    "div",
    { class: "credentials", id: `${prefix}fields` },
    creds.url
      ? copyField({ id: `${prefix}url`, label: `URL (${creds.protocol})`, value: creds.url })
      : h("p", { class: "hint" }, "No address yet: the cell needs a domain before the service can be reached."),
    creds.address ? copyField({ id: `${prefix}address`, label: "Address", value: creds.address }) : null,
    serverList(creds, prefix),
    copyField({ id: `${prefix}username`, label: "Username", value: creds.username }),
    passwordField(`${prefix}password`, creds.password),
    creds.setup ? h("p", { class: "hint", id: `${prefix}setup` }, creds.setup) : null,
  );
}
