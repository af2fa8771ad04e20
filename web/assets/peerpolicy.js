// The peer page's "Network access" card: whether the peer's traffic may leave the cell for
// the internet, whether it may reach the other peers (the cell's own services stay reachable
// either way), and where its internet leaves: straight out of the cell, or through one of the
// cell's exits, with fail-open (go direct while that exit is down) or, by default, nothing;
// below, the peer's traffic through its exit (exittraffic.js).

import { api } from "./api.js";
import { busy, h, replace } from "./dom.js";
import { TYPES } from "./exitform.js";
import { exitTraffic } from "./exittraffic.js";
import { alertRegion, checkbox, selectField, setAlert } from "./forms.js";

const POLICY = "/api/routing/peers";
const EXITS = "/api/connectivity/peers";
const CONNECTIONS = "/api/connectivity/connections";
const DIRECT = "";

/** "WireGuard", "OpenVPN", "SOCKS5 proxy": short enough for the picker on a phone. */
const typeLabel = (type) => (TYPES[type] ? TYPES[type].label.replace(/ file$/, "") : type);

const checked = (element) => element.querySelector("input").checked;

/** The card's content for the peer `name`; `flash` reports a saved change. */
export function networkAccess(name, flash) {
  const alert = alertRegion("peer-policy-alert");
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  const traffic = h("div", { id: "peer-exit-traffic-box" });
  const path = (base, tail = "") => `${base}/${encodeURIComponent(name)}${tail}`;

  function form(policy, exit, connections) {
    const internet = checkbox({
      id: "peer-policy-internet",
      name: "internet",
      label: "Internet through the cell",
      hint: "Off: the device reaches the cell's services only; everything else is refused at once.",
      checked: policy.internet,
    });
    const peers = checkbox({
      id: "peer-policy-peers",
      name: "peer_to_peer",
      label: "Reach the other peers",
      hint: "Off: this device and the other peers cannot reach each other.",
      checked: policy.peer_to_peer,
    });
    const via = selectField({
      id: "peer-exit",
      name: "connection",
      label: "Its internet leaves",
      value: exit.connection || DIRECT,
      options: [
        { value: DIRECT, label: "Straight out of the cell" },
        ...connections.map((c) => ({ value: c.id, label: `Through ${c.name} (${typeLabel(c.type)})` })),
      ],
      hint: connections.length
        ? "Through an exit, the device's DNS follows it too."
        : "The cell has no exits yet (Connectivity).",
    });
    const failOpen = checkbox({
      id: "peer-fail-open",
      name: "fail_open",
      label: "Fail open",
      hint: "While its exit is down, go straight out of the cell. Off (the default): no internet until the exit is back.",
      checked: exit.fail_open,
    });
    const save = h("button", { type: "submit", class: "btn btn-primary", id: "peer-policy-save" }, "Save");
    const element = h(
      "form",
      { id: "peer-policy-form", novalidate: true },
      internet,
      peers,
      via,
      failOpen,
      h("div", { class: "actions" }, save),
    );
    element.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(save, async () => {
        try {
          const updated = await api(path(POLICY), {
            method: "PUT",
            body: { internet: checked(internet), peer_to_peer: checked(peers) },
          });
          const connection = via.querySelector("select").value || null;
          if (connection !== (exit.connection || null)) {
            exit = await api(path(EXITS, "/exit"), { method: "PUT", body: { connection } });
          }
          if (checked(failOpen) !== exit.fail_open) {
            exit = await api(path(EXITS, "/failopen"), { method: "PUT", body: { fail_open: checked(failOpen) } });
          }
          setAlert(alert, "");
          showTraffic(exit, connections);
          const leaves = exit.connection ? "through its exit" : "straight out";
          flash(
            `${name}: internet ${updated.internet ? "on" : "off"} (${leaves}), other peers ${updated.peer_to_peer ? "reachable" : "not reachable"}.`,
          );
        } catch (error) {
          setAlert(alert, error.message);
        }
      });
    });
    return element;
  }

  function showTraffic(exit, connections) {
    replace(traffic, exitTraffic(name, exit, connections.find((c) => c.id === exit.connection)));
  }

  async function load() {
    try {
      const [{ peers: policies }, { peers: exits }, { connections }] = await Promise.all([
        api(POLICY),
        api(EXITS),
        api(CONNECTIONS),
      ]);
      const policy = policies.find((p) => p.peer === name) || { internet: true, peer_to_peer: true };
      const exit = exits.find((p) => p.peer === name) || { connection: null, fail_open: false };
      replace(body, form(policy, exit, connections));
      showTraffic(exit, connections);
    } catch (error) {
      replace(body);
      setAlert(alert, error.message);
    }
  }

  load();
  return h("div", {}, alert, body, traffic);
}
