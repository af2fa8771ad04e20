// The Exits page's edit dialog: the add form's fields for the connection's type (which a
// connection keeps), filled from what the API lists. No secret is ever shown or filled in:
// the file box and the password start empty, and empty means "keep the one the vault holds".
// Only what that type's PUT accepts is sent: a name and a new file (an .ovpn's login only with
// a new file), a proxy's host, port, resolvers, probe target and login, Tor's name.

import { api, ApiError } from "./api.js";
import { h } from "./dom.js";
import { openDialog } from "./dialog.js";
import { connectionFields, refusedLine, TYPES } from "./exitform.js";

const API = "/api/connectivity";
const PREFIX = "exit-edit";

/** What the edit asks of the API for this connection's type. */
function editBody(kind, fields) {
  const type = TYPES[kind];
  const body = { name: fields.name.value.trim() };
  const { file, proxy, credentials } = fields;
  if (type.file && file.textarea.value.trim()) body.config = file.textarea.value;
  if (kind === "openvpn") {
    const username = credentials.username.value.trim();
    if (username) body.username = username;
    if (credentials.password.value) body.password = credentials.password.value;
  }
  if (type.proxy) {
    body.host = proxy.host.value.trim();
    const port = proxy.port.value.trim();
    body.port = /^\d+$/.test(port) ? Number(port) : port;
    body.dns = proxy.dns.value.split(/[\s,]+/).filter(Boolean);
    body.probe_target = proxy.probe.value.trim() || null;
    // No username: the login goes, password with it. An empty password keeps the stored one.
    body.username = credentials.username.value.trim() || null;
    if (credentials.password.value) body.password = credentials.password.value;
  }
  return body;
}

/** Fills the fields from the connection as listed (its settings hold no secret). */
function prefill(connection, fields) {
  const settings = connection.settings || {};
  const { file, proxy, credentials } = fields;
  fields.name.value = connection.name;
  if (TYPES[connection.type].file) {
    file.textarea.placeholder = "Empty: the current file is kept.";
    file.wrapper.querySelector(".hint").textContent =
      "Paste a new file only to replace the current one; its keys are never shown.";
  }
  if (TYPES[connection.type].proxy) {
    proxy.host.value = settings.host || "";
    proxy.port.value = settings.port ? String(settings.port) : "";
    proxy.dns.value = (settings.dns || []).join(", ");
    proxy.probe.value = settings.probe_target || "";
    credentials.username.value = settings.username || "";
    if (settings.has_password) credentials.password.placeholder = "Empty: unchanged";
  }
  if (connection.type === "openvpn") {
    credentials.hint.textContent = "Only with a new file that has auth-user-pass: its login, again.";
  }
}

/** Opens the edit dialog for `connection` (an entry of /api/connectivity/connections). */
export function editConnection(connection, onSaved) {
  const fields = connectionFields(PREFIX, connection.type);
  fields.show();
  prefill(connection, fields);
  const dialog = openDialog({
    id: "exit-edit-dialog",
    title: `Edit ${connection.name}`,
    body: h("div", { id: "exit-edit-form", "data-type": connection.type }, fields.element),
    confirmLabel: "Save changes",
    action: async () => {
      try {
        const body = editBody(connection.type, fields);
        const saved = await api(`${API}/connections/${encodeURIComponent(connection.id)}`, { method: "PUT", body });
        onSaved(saved);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        throw refusedLine(error);
      } finally {
        fields.credentials.password.value = "";
      }
    },
  });
  dialog.classList.add("dialog-wide");
  return dialog;
}
