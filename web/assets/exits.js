// #/exits: the cell's exits, the connections to external providers that peers' internet can
// leave through. Each with its live state (up, down, connecting), the provider's handshake
// age and the peers that use it; a probe on demand; add a provider's WireGuard file; delete
// one no peer uses. A peer's exit is chosen on the peer's page ("Network access").

import { api, ApiError } from "./api.js";
import { busy, cell, dataTable, formatDuration, formatTime, h, replace } from "./dom.js";
import { alertRegion, clearErrors, field, setAlert, showErrors } from "./forms.js";
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

function exitRow(exit, actions) {
  const age = exit.handshake_age_seconds;
  return h(
    "tr",
    { "data-exit": exit.id },
    cell("Name", {}, h("strong", {}, exit.name), h("div", { class: "muted small" }, exit.type)),
    cell(
      "State",
      {},
      stateBadge(exit),
      exit.since ? h("div", { class: "muted small" }, `since ${formatTime(exit.since)}`) : null,
    ),
    cell("Handshake", {}, age === null || age === undefined ? h("span", { class: "muted" }, "none yet") : `${formatDuration(age)} ago`),
    cell("Interface", {}, h("code", {}, exit.interface)),
    cell("Peers", {}, exit.peers.length ? exit.peers.join(", ") : h("span", { class: "muted" }, "none")),
    cell("Actions", { class: "row-actions" }, ...actions),
  );
}

/** The add form: a name and the provider's wg-quick file. Field errors name the line. */
function addForm(onAdded) {
  const alert = alertRegion("exit-add-alert");
  const name = field({ id: "exit-name", name: "name", label: "Name", placeholder: "vpn-provider" });
  const config = h("textarea", {
    id: "exit-config",
    class: "mono",
    rows: "8",
    spellcheck: "false",
    "data-field": "config",
    "data-label": "WireGuard file",
    "aria-describedby": "exit-config-hint exit-config-error",
    placeholder: "[Interface]\nPrivateKey = …\nAddress = 10.64.0.2/32\nDNS = 10.64.0.1\n\n[Peer]\nPublicKey = …\nEndpoint = vpn.example.net:51820\nAllowedIPs = 0.0.0.0/0, ::/0",
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "exit-add-submit" }, "Add exit");
  const form = h(
    "form",
    { id: "exit-add-form", novalidate: true },
    name,
    h(
      "div",
      { class: "field" },
      h("label", { for: "exit-config" }, "WireGuard file"),
      config,
      h(
        "p",
        { class: "hint", id: "exit-config-hint" },
        "The provider's wg-quick file. Its keys are kept in the vault and never shown again; PostUp and other commands are refused.",
      ),
      h("p", { class: "field-error", id: "exit-config-error", hidden: true }),
    ),
    alert,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(submit, async () => {
      clearErrors(form, alert);
      const body = { name: name.querySelector("input").value.trim(), type: "wireguard_ext", config: config.value };
      try {
        const created = await api(`${API}/connections`, { method: "POST", body });
        config.value = "";
        name.querySelector("input").value = "";
        onAdded(created);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  return form;
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

  function actions(exit) {
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
    return [probeButton(exit), remove];
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
      const [{ exits }, status] = await Promise.all([api(`${API}/exits`), api(`${API}/status`)]);
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
              headings: ["Name", "State", "Handshake", "Interface", "Peers", "Actions"],
              rows: exits.map((e) => exitRow(e, actions(e))),
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
