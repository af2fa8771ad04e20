// #/peers: every peer with its live WireGuard state (refreshed every few seconds), and the
// form that adds a peer and shows its QR code at once.

import { api, ApiError } from "./api.js";
import { busy, cell, dataTable, formatAgo, formatBytes, formatTime, h, replace } from "./dom.js";
import {
  alertRegion,
  checkbox,
  checkedValue,
  choices,
  clearErrors,
  field,
  fromLocalInput,
  setAlert,
  showErrors,
} from "./forms.js";
import { onboarding } from "./onboarding.js";

const REFRESH_SECONDS = 15;
/** WireGuard renews a session's handshake every two minutes while traffic flows. */
const ONLINE_SECONDS = 180;
const DEFAULT_KEEPALIVE = 25;

export const TUNNEL_OPTIONS = [
  { value: "full", label: "Full tunnel", hint: "All of the device's traffic goes through the cell." },
  { value: "split", label: "Split tunnel", hint: "Only traffic for the cell's own networks goes through it." },
];
export const TUNNEL_LABELS = { full: "Full tunnel", split: "Split tunnel" };

export const peerHash = (name) => `#/peers/${encodeURIComponent(name)}`;
export const peerApi = (name, rest = "") => `/api/peers/${encodeURIComponent(name)}${rest}`;

export function isExpired(peer, now = Date.now()) {
  return Boolean(peer.expires_at) && new Date(peer.expires_at).getTime() <= now;
}

/**
 * What WireGuard says about a peer: online when its latest handshake is recent, otherwise
 * when it was last seen. `wireguard` is null when the peer is not on the interface (disabled,
 * expired, or the WireGuard driver is unavailable).
 */
export function liveState(peer, now = Date.now()) {
  const live = peer.wireguard;
  if (!live) {
    return { online: null, text: "No live data from WireGuard" };
  }
  if (!live.latest_handshake) {
    return { online: false, text: "Never connected" };
  }
  const age = (now - new Date(live.latest_handshake).getTime()) / 1000;
  if (age <= ONLINE_SECONDS) {
    return { online: true, text: `Handshake ${formatAgo(live.latest_handshake, now)}` };
  }
  return { online: false, text: `Last seen ${formatAgo(live.latest_handshake, now)}` };
}

/** The peer's badges: Disabled / Expired when it is off the interface, else Online / Offline. */
export function stateBadges(peer) {
  const badges = [];
  if (!peer.enabled) badges.push(h("span", { class: "badge badge-disabled" }, "Disabled"));
  if (isExpired(peer)) badges.push(h("span", { class: "badge badge-expired" }, "Expired"));
  if (badges.length === 0) {
    const { online } = liveState(peer);
    const [kind, label] =
      online === null ? ["unknown", "Unknown"] : online ? ["online", "Online"] : ["offline", "Offline"];
    badges.push(h("span", { class: `badge badge-${kind}` }, label));
  }
  return h("span", { class: "badges" }, badges);
}

/** "Received 1.2 MiB · Sent 300 KiB", from the cell's side; "—" without live data. */
export function traffic(peer) {
  const live = peer.wireguard;
  if (!live) return h("span", { class: "muted" }, "—");
  return h(
    "span",
    { class: "traffic" },
    h("span", {}, `Received ${formatBytes(live.rx_bytes)}`),
    h("span", {}, `Sent ${formatBytes(live.tx_bytes)}`),
  );
}

function peerRow(peer) {
  const expired = isExpired(peer);
  return h(
    "tr",
    { "data-peer": peer.name },
    cell(
      "Peer",
      {},
      h(
        "span",
        { class: "peer-name" },
        h("a", { href: peerHash(peer.name), id: `peer-link-${peer.name}` }, peer.name),
        h("span", { class: "muted small" }, TUNNEL_LABELS[peer.tunnel] || peer.tunnel),
      ),
    ),
    cell(
      "Status",
      {},
      h("span", { class: "peer-state" }, stateBadges(peer), h("span", { class: "muted small" }, liveState(peer).text)),
    ),
    cell(
      "Addresses",
      {},
      h("span", { class: "addresses" }, h("code", {}, peer.address_v4), h("code", {}, peer.address_v6)),
    ),
    cell("Traffic", {}, traffic(peer)),
    cell(
      "Expires",
      { class: "nowrap" },
      peer.expires_at
        ? h("time", { datetime: peer.expires_at, class: expired ? "expired" : null }, formatTime(peer.expires_at))
        : h("span", { class: "muted" }, "Never"),
    ),
  );
}

function peersTable(peers) {
  if (peers.length === 0) {
    return h("p", { class: "empty" }, "No peers yet. Add the first device with the form above.");
  }
  return dataTable({
    id: "peers-table",
    caption: "Peers and their WireGuard state",
    headings: ["Peer", "Status", "Addresses", "Traffic", "Expires"],
    rows: peers.map(peerRow),
  });
}

/** Keepalive as typed: empty is none (null), digits a number, anything else is for the API to refuse. */
export function readKeepalive(value) {
  const text = value.trim();
  if (text === "") return null;
  return /^\d+$/.test(text) ? Number(text) : text;
}

function addForm(onAdded, onCancel) {
  const alert = alertRegion("peer-add-alert");
  const name = field({
    id: "peer-name",
    name: "name",
    label: "Name",
    placeholder: "alice-phone",
    hint: "Lowercase letters, digits and hyphens. It becomes the device's name in the cell's DNS.",
  });
  const expires = field({
    id: "peer-expires",
    name: "expires_at",
    label: "Expires (optional)",
    type: "datetime-local",
    hint: "The peer is switched off at this time. Empty for never.",
  });
  const tunnel = choices({
    id: "peer-tunnel",
    name: "tunnel",
    label: "Tunnel",
    options: TUNNEL_OPTIONS,
    value: "full",
  });
  const keepalive = field({
    id: "peer-keepalive",
    name: "persistent_keepalive",
    label: "Keepalive (seconds)",
    inputmode: "numeric",
    value: String(DEFAULT_KEEPALIVE),
    hint: "Keeps a device behind NAT reachable: 0 to 3600, empty for none.",
  });
  const preshared = checkbox({
    id: "peer-preshared",
    name: "preshared_key",
    label: "Preshared key",
    hint: "A second, symmetric key on top of the key pair.",
    checked: true,
  });
  const publicKey = field({
    id: "peer-public-key",
    name: "public_key",
    label: "Device's own public key (optional)",
    placeholder: "base64, 44 characters",
    hint: "Only when the device made its own key pair: the cell then never sees its private key, and there is no QR code.",
  });
  const portal = field({
    id: "peer-portal-password",
    name: "portal_password",
    label: "Portal password (optional)",
    type: "password",
    autocomplete: "new-password",
    hint: "Lets the peer sign in to the portal with its name. Or send an invitation link later.",
  });
  const input = (wrapper) => wrapper.querySelector("input");
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "peer-add-submit" }, "Add peer");
  const form = h(
    "form",
    { id: "peer-add-form", novalidate: true },
    h("div", { class: "grid-2" }, name, expires),
    h("div", { class: "grid-2" }, tunnel, h("div", {}, keepalive, preshared)),
    h("div", { class: "grid-2" }, publicKey, portal),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "btn", id: "peer-add-cancel", onclick: onCancel }, "Cancel"),
      h("span", { class: "spacer" }),
      submit,
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const body = {
      name: input(name).value.trim(),
      tunnel: checkedValue(tunnel) || "full",
      preshared_key: input(preshared).checked,
      persistent_keepalive: readKeepalive(input(keepalive).value),
    };
    const expiry = fromLocalInput(input(expires).value);
    if (expiry) body.expires_at = expiry;
    const key = input(publicKey).value.trim();
    if (key) body.public_key = key;
    if (input(portal).value) body.portal_password = input(portal).value;
    busy(submit, async () => {
      try {
        const peer = await api("/api/peers", { method: "POST", body });
        onAdded(peer);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  return {
    element: h("div", {}, alert, form),
    focus: () => input(name).focus(),
  };
}

/** Shown right after a peer is added: its QR code, the download, and where to go next. */
function addedPanel(peer, { onAnother, onDone }) {
  return h(
    "div",
    { id: "peer-added" },
    h(
      "div",
      { class: "alert alert-ok", role: "status" },
      `${peer.name} was added with ${peer.address_v4} and ${peer.address_v6}.`,
    ),
    onboarding({
      name: peer.name,
      qrUrl: peerApi(peer.name, "/qr"),
      configUrl: peerApi(peer.name, "/config"),
      generated: peer.key_source === "generated",
      idPrefix: "peer-added-",
    }),
    h(
      "div",
      { class: "actions" },
      h("a", { class: "btn", href: peerHash(peer.name), id: "peer-added-open" }, "Open peer"),
      h("button", { type: "button", class: "btn", id: "peer-add-another", onclick: onAnother }, "Add another peer"),
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "btn btn-primary", id: "peer-added-done", onclick: onDone }, "Done"),
    ),
  );
}

export function mount(root) {
  const alert = alertRegion("peers-alert");
  const updated = h("span", { class: "muted small" });
  const toggle = h(
    "button",
    {
      type: "button",
      class: "btn btn-primary",
      id: "peer-add-toggle",
      "aria-expanded": "false",
      "aria-controls": "peer-add",
    },
    "Add peer",
  );
  const refresh = h("button", { type: "button", class: "btn btn-small", id: "peers-refresh" }, "Refresh");
  const addTitle = h("h2", { id: "peer-add-title", tabindex: "-1" }, "Add a peer");
  const addBody = h("div", {});
  const addCard = h(
    "section",
    { class: "card", id: "peer-add", "aria-labelledby": "peer-add-title", hidden: true },
    addTitle,
    addBody,
  );
  const list = h("div", { id: "peers-list" }, h("p", { class: "loading" }, "Loading…"));
  const summary = h("span", { class: "muted small", id: "peers-summary" });
  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Peers"),
        h("p", {}, "The devices that reach the cell over WireGuard, and how they are doing."),
      ),
      h("div", { class: "toolbar" }, toggle),
    ),
    alert,
    addCard,
    h(
      "section",
      { class: "card", "aria-labelledby": "peers-title" },
      h(
        "div",
        { class: "card-header" },
        h("h2", { id: "peers-title" }, "All peers"),
        h("div", { class: "toolbar" }, summary, updated, refresh),
      ),
      list,
    ),
  );

  function showForm() {
    const form = addForm(added, hideForm);
    addTitle.textContent = "Add a peer";
    replace(addBody, form.element);
    addCard.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    form.focus();
  }

  function hideForm() {
    addCard.hidden = true;
    replace(addBody);
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  }

  function added(peer) {
    addTitle.textContent = `Connect ${peer.name}`;
    replace(addBody, addedPanel(peer, { onAnother: showForm, onDone: hideForm }));
    // Keep the page where it is (the list stays in sight) unless the card is off screen.
    addTitle.focus({ preventScroll: true });
    addCard.scrollIntoView({ block: "nearest" });
    load();
  }

  // While a new peer's QR code is shown, "Add peer" starts the next one rather than closing.
  toggle.addEventListener("click", () => (addBody.querySelector("#peer-add-form") ? hideForm() : showForm()));

  let first = true;
  async function load() {
    try {
      const data = await api("/api/peers");
      setAlert(alert, "");
      // A refresh must not take the keyboard away from the link it was on.
      const focused = list.contains(document.activeElement) ? document.activeElement.id : null;
      replace(list, peersTable(data.peers));
      if (focused) document.getElementById(focused)?.focus({ preventScroll: true });
      const online = data.peers.filter((p) => p.enabled && !isExpired(p) && liveState(p).online).length;
      const count = data.peers.length;
      summary.textContent = count ? `${count} ${count === 1 ? "peer" : "peers"}, ${online} online` : "";
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      if (first && data.peers.length === 0) showForm();
      first = false;
    } catch (error) {
      setAlert(alert, error.message);
    }
  }

  refresh.addEventListener("click", () => busy(refresh, load));
  load();
  const timer = setInterval(load, REFRESH_SECONDS * 1000);
  return { destroy: () => clearInterval(timer) };
}
