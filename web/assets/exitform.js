// The Exits page's add form: a type picker (a provider's WireGuard or OpenVPN file, a SOCKS5
// or HTTP proxy, Tor) that shows only the fields of the chosen type; its fields are also the
// edit dialog's (exitedit.js). The API's field errors land
// by their field; a refused .ovpn line (a 422 whose message starts with "config") lands
// under the file. Passwords sit in password inputs and are emptied once sent: the API never
// answers them, and the page never shows them.

import { api, ApiError } from "./api.js";
import { busy, h } from "./dom.js";
import { alertRegion, clearErrors, field, foldListErrors, selectField, showErrors } from "./forms.js";

const API = "/api/connectivity";

/** The types the form offers, with what each asks for. */
export const TYPES = {
  wireguard_ext: {
    label: "WireGuard file",
    file: true,
    hint: "The provider's wg-quick file. Its keys are kept in the vault and never shown again; PostUp and other commands are refused.",
    placeholder:
      "[Interface]\nPrivateKey = …\nAddress = 10.64.0.2/32\nDNS = 10.64.0.1\n\n[Peer]\nPublicKey = …\nEndpoint = vpn.example.net:51820\nAllowedIPs = 0.0.0.0/0, ::/0",
  },
  openvpn: {
    label: "OpenVPN file",
    file: true,
    credentials: "Only for a file with auth-user-pass: the provider's login. The password is kept in the vault, never shown.",
    hint: "The provider's .ovpn client file with its keys inline. It is kept in the vault; commands (up, down, script-security …) and compression are refused.",
    placeholder: "client\nremote vpn.example.net 1194 udp\nremote-cert-tls server\nauth-user-pass\n<ca>\n-----BEGIN CERTIFICATE-----\n…\n</ca>",
  },
  socks5: {
    label: "SOCKS5 proxy",
    proxy: true,
    credentials: "The proxy's login, if it asks for one. The password is kept in the vault, never shown.",
  },
  http: {
    label: "HTTP proxy",
    proxy: true,
    credentials: "The proxy's login, if it asks for one. The password is kept in the vault, never shown.",
  },
  tor: {
    label: "Tor",
    note: "The cell runs a Tor client for this exit: its peers' web traffic and DNS go through Tor; their UDP (QUIC), ping and IPv6 are refused. Nothing else to fill in.",
  },
};

const input = (wrapper) => wrapper.querySelector("input, select, textarea");

/** The file box shared by the two file types; its label and hint follow the type. */
function fileField(prefix) {
  const textarea = h("textarea", {
    id: `${prefix}-config`,
    class: "mono",
    rows: "8",
    spellcheck: "false",
    "data-field": "config",
    "aria-describedby": `${prefix}-config-hint ${prefix}-config-error`,
  });
  const label = h("label", { for: `${prefix}-config` });
  const hint = h("p", { class: "hint", id: `${prefix}-config-hint` });
  const wrapper = h(
    "div",
    { class: "field", id: `${prefix}-file-fields` },
    label,
    textarea,
    hint,
    h("p", { class: "field-error", id: `${prefix}-config-error`, hidden: true }),
  );
  return {
    wrapper,
    textarea,
    show(type) {
      label.textContent = type.label;
      textarea.dataset.label = type.label;
      textarea.placeholder = type.placeholder;
      hint.textContent = type.hint;
    },
  };
}

/** Host, port, resolvers and probe target: what a proxy connection needs. */
function proxyFields(prefix) {
  const host = field({ id: `${prefix}-host`, name: "host", label: "Host", placeholder: "proxy.example.net" });
  const port = field({ id: `${prefix}-port`, name: "port", label: "Port", inputmode: "numeric", placeholder: "1080" });
  const dns = field({
    id: `${prefix}-dns`,
    name: "dns",
    label: "DNS resolvers (optional)",
    placeholder: "9.9.9.9, 149.112.112.112",
    hint: "Asked through the proxy for the peers' names; without one their DNS queries fail.",
  });
  const probe = field({
    id: `${prefix}-probe-target`,
    name: "probe_target",
    label: "Probe target (optional)",
    placeholder: "example.net:443",
    hint: "host:port the health check opens through the proxy.",
  });
  const wrapper = h(
    "div",
    { id: `${prefix}-proxy-fields` },
    h("div", { class: "grid-endpoint" }, host, port),
    h("div", { class: "grid-2" }, dns, probe),
  );
  return { wrapper, host: input(host), port: input(port), dns: input(dns), probe: input(probe) };
}

/** Username and password, for openvpn (auth-user-pass) and the proxies. */
function credentialFields(prefix) {
  // The hint text follows the type (show() sets it); " " makes field() give it its line.
  const username = field({ id: `${prefix}-username`, name: "username", label: "Username (optional)", hint: " " });
  const password = field({
    id: `${prefix}-password`,
    name: "password",
    label: "Password (optional)",
    type: "password",
    autocomplete: "new-password",
  });
  const hint = username.querySelector(".hint");
  const wrapper = h("div", { id: `${prefix}-credential-fields`, class: "grid-2" }, username, password);
  return { wrapper, hint, username: input(username), password: input(password) };
}

/** A port as typed: a number when it is one, else the text, for the API to name the problem. */
function portValue(text) {
  return /^\d+$/.test(text) ? Number(text) : text;
}

/** The body for the chosen type, from the visible fields only; empty optionals are left out. */
function bodyOf(kind, name, file, proxy, credentials) {
  const body = { name, type: kind };
  const type = TYPES[kind];
  if (type.file) body.config = file.textarea.value;
  if (type.proxy) {
    const host = proxy.host.value.trim();
    const port = proxy.port.value.trim();
    if (host) body.host = host;
    if (port) body.port = portValue(port);
    const dns = proxy.dns.value.split(/[\s,]+/).filter(Boolean);
    if (dns.length) body.dns = dns;
    const probe = proxy.probe.value.trim();
    if (probe) body.probe_target = probe;
  }
  if (type.credentials) {
    const username = credentials.username.value.trim();
    if (username) body.username = username;
    if (credentials.password.value) body.password = credentials.password.value;
  }
  return body;
}

/** A refused .ovpn is a 422 "config line N: …": shown under the file like a field error. */
export function refusedLine(error) {
  if (error.status === 422 && /^config /.test(error.message) && Object.keys(error.fields).length === 0) {
    error.fields = { config: error.message.slice("config ".length) };
  }
  return foldListErrors(error, ["dns"]);
}

/**
 * The fields of a connection form, their ids under `prefix`: name, type, and each type's
 * own (shown by `show`). `kind` fixes the type (an edit: a connection keeps its type).
 */
export function connectionFields(prefix, kind) {
  const name = field({ id: `${prefix}-name`, name: "name", label: "Name", placeholder: "vpn-provider" });
  const type = selectField({
    id: `${prefix}-type`,
    name: "type",
    label: "Type",
    options: Object.entries(TYPES).map(([value, t]) => ({ value, label: t.label })),
    value: kind || "wireguard_ext",
  });
  input(type).disabled = Boolean(kind);
  const file = fileField(prefix);
  const proxy = proxyFields(prefix);
  const credentials = credentialFields(prefix);
  const note = h("p", { class: "hint", id: `${prefix}-type-note`, hidden: true });
  const element = h(
    "div",
    { class: "connection-fields" },
    h("div", { class: "grid-endpoint" }, name, type),
    note,
    file.wrapper,
    proxy.wrapper,
    credentials.wrapper,
  );
  return {
    element,
    name: input(name),
    type: input(type),
    file,
    proxy,
    credentials,
    /** Shows the chosen type's fields and hides the others'. */
    show() {
      const chosen = TYPES[input(type).value];
      file.wrapper.hidden = !chosen.file;
      proxy.wrapper.hidden = !chosen.proxy;
      credentials.wrapper.hidden = !chosen.credentials;
      note.hidden = !chosen.note;
      note.textContent = chosen.note || "";
      if (chosen.file) file.show(chosen);
      credentials.hint.textContent = chosen.credentials || "";
    },
    /** The body to create a connection of the chosen type. */
    body() {
      return bodyOf(input(type).value, input(name).value.trim(), file, proxy, credentials);
    },
  };
}

/** The add form; `onAdded` gets the created connection. */
export function addForm(onAdded) {
  const alert = alertRegion("exit-add-alert");
  const fields = connectionFields("exit");
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "exit-add-submit" }, "Add exit");
  const form = h(
    "form",
    { id: "exit-add-form", novalidate: true },
    fields.element,
    alert,
    h("div", { class: "actions" }, submit),
  );

  function show() {
    form.dataset.type = fields.type.value;
    fields.show();
    clearErrors(form, alert);
  }
  fields.type.addEventListener("change", show);
  show();

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(submit, async () => {
      clearErrors(form, alert);
      try {
        const created = await api(`${API}/connections`, { method: "POST", body: fields.body() });
        const { proxy, credentials } = fields;
        for (const box of [fields.name, fields.file.textarea, proxy.host, proxy.port, proxy.dns, proxy.probe]) box.value = "";
        credentials.username.value = "";
        credentials.password.value = "";
        onAdded(created);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, refusedLine(error), alert);
      }
    });
  });
  return form;
}
