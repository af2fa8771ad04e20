// The peer page's "Network access" card: whether the peer's traffic may leave the cell for
// the internet, and whether it may reach the other peers (the cell's own services stay
// reachable either way). Kept by picd as the peer's routing policy.

import { api } from "./api.js";
import { busy, h, replace } from "./dom.js";
import { alertRegion, checkbox, setAlert } from "./forms.js";

const POLICY = "/api/routing/peers";

/** The card's content for the peer `name`; `flash` reports a saved change. */
export function networkAccess(name, flash) {
  const alert = alertRegion("peer-policy-alert");
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));

  function form(policy) {
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
    const save = h("button", { type: "submit", class: "btn btn-primary", id: "peer-policy-save" }, "Save");
    const element = h("form", { id: "peer-policy-form", novalidate: true }, internet, peers, h("div", { class: "actions" }, save));
    element.addEventListener("submit", (event) => {
      event.preventDefault();
      busy(save, async () => {
        const change = {
          internet: internet.querySelector("input").checked,
          peer_to_peer: peers.querySelector("input").checked,
        };
        try {
          const updated = await api(`${POLICY}/${encodeURIComponent(name)}`, { method: "PUT", body: change });
          setAlert(alert, "");
          flash(
            `${name}: internet ${updated.internet ? "on" : "off"}, other peers ${updated.peer_to_peer ? "reachable" : "not reachable"}.`,
          );
        } catch (error) {
          setAlert(alert, error.message);
        }
      });
    });
    return element;
  }

  async function load() {
    try {
      const { peers } = await api(POLICY);
      const policy = peers.find((p) => p.peer === name) || { internet: true, peer_to_peer: true };
      replace(body, form(policy));
    } catch (error) {
      replace(body);
      setAlert(alert, error.message);
    }
  }

  load();
  return h("div", {}, alert, body);
}
