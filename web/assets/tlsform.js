// How Caddy gets the cell's certificates, shared by the wizard's TLS step and the settings
// page. `prefix` is what the API puts before field names ("" in the wizard, "tls." for
// PUT /api/config).

import { h } from "./dom.js";
import { checkedValue, choices, field } from "./forms.js";

const MODES = [
  {
    value: "internal",
    label: "The cell's own certificate authority",
    hint: "For a private domain such as home.example. Each device installs the cell's CA once, from the peer portal.",
  },
  {
    value: "acme",
    label: "Public certificates (ACME, e.g. Let's Encrypt)",
    hint: "For a real domain whose name points at this machine, with ports 80 and 443 open to the internet.",
  },
];

/** The mode choice, and the ACME account's e-mail and CA, shown only for ACME. */
export function tlsSection(prefix, idPrefix, data) {
  const values = data || { mode: "internal", acme_email: "", acme_ca: "" };
  const mode = choices({
    id: `${idPrefix}mode`,
    name: `${prefix}mode`,
    label: "Certificates",
    options: MODES,
    value: values.mode,
  });
  const email = field({
    id: `${idPrefix}acme_email`,
    name: `${prefix}acme_email`,
    label: "Contact e-mail (optional)",
    type: "email",
    autocomplete: "email",
    placeholder: "you@example.org",
    value: values.acme_email,
    hint: "The certificate authority writes here about problems with your certificates.",
  });
  const ca = field({
    id: `${idPrefix}acme_ca`,
    name: `${prefix}acme_ca`,
    label: "ACME directory (optional)",
    placeholder: "https://acme-v02.api.letsencrypt.org/directory",
    value: values.acme_ca,
    hint: "Leave empty for Let's Encrypt; or the directory URL of your own ACME CA, whose root this machine trusts.",
  });
  const acme = h("div", { class: "acme-fields" }, email, ca);
  const sync = () => {
    acme.hidden = checkedValue(mode) !== "acme";
  };
  mode.addEventListener("change", sync);
  sync();
  const element = h("div", {}, mode, acme);
  // Hidden ACME fields are still sent: switching back to internal keeps what was typed.
  function read() {
    return {
      mode: checkedValue(mode),
      acme_email: email.querySelector("input").value.trim(),
      acme_ca: ca.querySelector("input").value.trim(),
    };
  }
  return { element, read };
}
