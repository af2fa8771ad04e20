// #/exits: the cell's exits, the connections to external providers that peers' internet can
// leave through. Each with its type, where it goes (a WireGuard endpoint, an OpenVPN file's
// remotes, a proxy's host:port), its live state (up, down, connecting), the provider's
// handshake age and the peers that use it; a probe on demand; add one (exitform.js); edit one
// (exitedit.js); delete one no peer uses. A peer's exit is chosen on the peer's page ("Network access").

import { api } from "./api.js";
import { busy, cell, dataTable, formatDuration, formatTime, h, replace } from "./dom.js";
import { editConnection } from "./exitedit.js";
import { addForm, TYPES } from "./exitform.js";
import { alertRegion, setAlert } from "./forms.js";
import { confirmDelete, deleteButton } from "./fwshared.js";

const API = "/api/connectivity";
const REFRESH_SECONDS = 10;
const STATES = {
  up: ["badge badge-ok", "Up"],
  down: ["badge badge-unavailable", "Down"],
  connecting: ["badge badge-degraded", "Connecting"],
};

function stateBadge(exit) {
  const [klass, text] = STATES[exit.state] || STATES.connecting;
  return h("span", { class: klass, "data-state": exit.state }, text);
}

/** A cell whose lines stay together: on a phone, one item beside the cell's label. */
function stacked(label, attrs, ...content) {
  return cell(label, attrs, h("div", {}, ...content));
}

/** Where a connection goes, from its stored settings (none of them secret). */
function destinations(settings, type) {
  if (type === "tor") return ["the Tor network"];
  if (!settings) return [];
  if (Array.isArray(settings.remotes)) return settings.remotes.map((r) => `${r.host}:${r.port}/${r.proto}`);
  if (settings.host) return [`${settings.host}:${settings.port}`];
  return settings.endpoint ? [settings.endpoint] : [];
}

function destinationCell(settings, type) {
  const list = destinations(settings, type);
  if (list.length === 0) return cell("Goes to", {}, h("span", { class: "muted" }, "unknown"));
  return stacked("Goes to", { class: "exit-destinations" }, ...list.map((d) => h("div", {}, h("code", {}, d))));
}

/** Only a WireGuard exit has a handshake; the others say what tells their health. */
function handshakeText(type, age) {
  if (type !== "wireguard_ext") {
    const by = type === "openvpn" ? "its management socket" : type === "tor" ? "its control port" : "a probe";
    return h("span", { class: "muted" }, `none: health by ${by}`);
  }
  if (age === null || age === undefined) return h("span", { class: "muted" }, "none yet");
  return `${formatDuration(age)} ago`;
}

function exitRow(exit, settings, actions) {
  const age = exit.handshake_age_seconds;
  const type = TYPES[exit.type];
  return h(
    "tr",
    { "data-exit": exit.id, "data-type": exit.type },
    stacked(
      "Name",
      {},
      h("strong", {}, exit.name),
      h("div", { class: "muted small exit-type" }, type ? type.label.replace(/ file$/, "") : exit.type),
    ),
    destinationCell(settings, exit.type),
    stacked(
      "State",
      {},
      stateBadge(exit),
      exit.since ? h("div", { class: "muted small" }, `since ${formatTime(exit.since)}`) : null,
    ),
    cell("Handshake", {}, handshakeText(exit.type, age)),
    cell("Interface", {}, exit.interface ? h("code", {}, exit.interface) : h("span", { class: "muted" }, "none: a redirect")),
    cell("Peers", {}, exit.peers.length ? exit.peers.join(", ") : h("span", { class: "muted" }, "none")),
    stacked("Actions", { class: "row-actions" }, ...actions),
  );
}

export function mount(root, _params, ctx) {
  const alert = alertRegion("exits-alert");
  const list = h("div", { id: "exits-list" }, h("p", { class: "loading" }, "Loading…"));
  let gone = false;

  function probeButton(exit) {
    const button = h("button", { type: "button", class: "btn btn-small", id: `exit-probe-${exit.id}` }, "Probe");
    button.addEventListener("click", () =>
      busy(button, async () => {
        try {
          const probe = await api(`${API}/connections/${encodeURIComponent(exit.id)}/health`);
          ctx.flash(
            probe.answered
              ? `${exit.name} answered through the exit in ${probe.probe_ms} ms.`
              : `${exit.name} did not answer through the exit.`,
          );
        } catch (error) {
          setAlert(alert, error.message);
        }
      }),
    );
    return button;
  }

  function editButton(connection) {
    if (!connection) return null;
    const button = h(
      "button",
      { type: "button", class: "btn btn-small", id: `exit-edit-${connection.id}`, "aria-label": `Edit ${connection.name}` },
      "Edit",
    );
    button.addEventListener("click", () =>
      editConnection(connection, (saved) => {
        ctx.flash(`${saved.name} was saved.`);
        load();
      }),
    );
    return button;
  }

  function actions(exit, connection) {
    const remove = deleteButton(`exit-delete-${exit.id}`, exit.name, () =>
      confirmDelete({
        id: "exit-delete-dialog",
        title: `Delete ${exit.name}?`,
        body: h("p", {}, "Its interface, routing table and keys are removed."),
        confirmLabel: "Delete exit",
        path: `${API}/connections/${encodeURIComponent(exit.id)}`,
        onDeleted: () => {
          ctx.flash(`${exit.name} was deleted.`);
          load();
        },
      }),
    );
    if (exit.peers.length) {
      remove.disabled = true;
      remove.title = "Peers use it: move them first";
    }
    return [probeButton(exit), editButton(connection), remove];
  }

  const note = h("div", { class: "alert alert-warn", id: "exits-driver", role: "status", hidden: true });

  /** Says so when picd cannot build exits here: states then stay "connecting". */
  function driverNote(driver) {
    const off = driver && driver.state !== "ok";
    note.hidden = !off;
    if (off) {
      replace(
        note,
        h("strong", {}, "Exits are not applied. "),
        `connectivity: ${driver.reason || driver.state}. Connections are still recorded and are built once picd can.`,
      );
    }
  }

  async function load() {
    try {
      const [{ exits }, status, { connections }] = await Promise.all([
        api(`${API}/exits`),
        api(`${API}/status`),
        api(`${API}/connections`),
      ]);
      const byId = new Map(connections.map((c) => [c.id, c]));
      if (gone) return;
      driverNote(status.driver);
      setAlert(alert, "");
      replace(
        list,
        exits.length === 0
          ? h("p", { class: "empty" }, "The cell has no exits: every peer's internet leaves straight out of the cell.")
          : dataTable({
              id: "exits-table",
              caption: "Exits",
              headings: ["Name", "Goes to", "State", "Handshake", "Interface", "Peers", "Actions"],
              rows: exits.map((e) => exitRow(e, byId.get(e.id)?.settings, actions(e, byId.get(e.id)))),
            }),
      );
    } catch (error) {
      if (!gone) setAlert(alert, error.message);
    }
  }

  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Exits"),
        h(
          "p",
          {},
          "Providers a peer's internet can leave through. A peer whose exit is down gets no internet, unless it is set to fail open.",
        ),
      ),
    ),
    alert,
    note,
    h("section", { class: "card", id: "exits-card", "aria-labelledby": "exits-title" }, h("h2", { id: "exits-title" }, "Connections"), list),
    h(
      "section",
      { class: "card", id: "exit-add-card", "aria-labelledby": "exit-add-title" },
      h("h2", { id: "exit-add-title" }, "Add an exit"),
      addForm((created) => {
        ctx.flash(`${created.name} was added.`);
        load();
      }),
    ),
  );
  load();
  const timer = setInterval(load, REFRESH_SECONDS * 1000);
  return {
    destroy() {
      gone = true;
      clearInterval(timer);
    },
  };
}
