// #/peers/<name>: one peer. Its addresses and keys, live WireGuard state, the QR code and
// config, switching it on and off, editing tunnel, keepalive and expiry, its network access
// (internet, other peers), inviting it to the portal, and deleting it.

import { api, ApiError } from "./api.js";
import { busy, formatBytes, formatTime, h, replace } from "./dom.js";
import { openDialog } from "./dialog.js";
import {
  alertRegion,
  checkedValue,
  choices,
  clearErrors,
  field,
  fromLocalInput,
  setAlert,
  showErrors,
  toLocalInput,
} from "./forms.js";
import { onboarding, reloadQr } from "./onboarding.js";
import { networkAccess } from "./peerpolicy.js";
import { isExpired, liveState, peerApi, readKeepalive, stateBadges, TUNNEL_LABELS, TUNNEL_OPTIONS } from "./peers.js";
import { onceWarning, secretField } from "./secret.js";

const REFRESH_SECONDS = 15;
const INVITE_VALIDITY = [
  { hours: 24, label: "1 day" },
  { hours: 72, label: "3 days" },
  { hours: 168, label: "7 days" },
  { hours: 720, label: "30 days" },
];
const DEFAULT_INVITE_HOURS = 72;

function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.map(([term, ...value]) => [h("dt", {}, term), h("dd", {}, ...value)]),
  );
}

function card(id, title, ...content) {
  return h(
    "section",
    { class: "card", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title),
    ...content,
  );
}

function detailFacts(peer) {
  const expired = isExpired(peer);
  return facts([
    ["IPv4 address", h("code", {}, peer.address_v4)],
    ["IPv6 address", h("code", {}, peer.address_v6)],
    ["Public key", h("code", { class: "key", id: "peer-public-key" }, peer.public_key)],
    [
      "Key pair",
      peer.key_source === "generated"
        ? "Made by the cell; the private key is kept in the vault"
        : "The device's own; the cell has no private key",
    ],
    ["Preshared key", peer.has_preshared_key ? "Yes" : "No"],
    ["Tunnel", TUNNEL_LABELS[peer.tunnel] || peer.tunnel],
    [
      "Allowed IPs",
      h(
        "span",
        { class: "addresses" },
        peer.allowed_ips.map((ip) => h("code", {}, ip)),
      ),
    ],
    ["Keepalive", peer.persistent_keepalive ? `${peer.persistent_keepalive} s` : "Off"],
    [
      "Expires",
      peer.expires_at
        ? `${formatTime(peer.expires_at)}${expired ? " (expired)" : ""}`
        : h("span", { class: "muted" }, "Never"),
    ],
    ["Portal login", peer.has_portal_login ? "Yes" : "No"],
    ["Added", formatTime(peer.created_at)],
  ]);
}

function liveFacts(peer) {
  const live = peer.wireguard;
  const state = liveState(peer);
  return facts([
    ["State", h("span", { class: "peer-state" }, stateBadges(peer), h("span", { class: "muted small" }, state.text))],
    ["Latest handshake", live && live.latest_handshake ? formatTime(live.latest_handshake) : "Never"],
    ["Endpoint", live && live.endpoint ? h("code", {}, live.endpoint) : h("span", { class: "muted" }, "—")],
    ["Received", live ? formatBytes(live.rx_bytes) : "—"],
    ["Sent", live ? formatBytes(live.tx_bytes) : "—"],
  ]);
}

/** Tunnel, keepalive and expiry; only what changed is sent, so nothing else is reset. */
function settingsForm(peer, saved) {
  const alert = alertRegion("peer-edit-alert");
  const tunnel = choices({
    id: "peer-edit-tunnel",
    name: "tunnel",
    label: "Tunnel",
    options: TUNNEL_OPTIONS,
    value: peer.tunnel,
  });
  const keepalive = field({
    id: "peer-edit-keepalive",
    name: "persistent_keepalive",
    label: "Keepalive (seconds)",
    inputmode: "numeric",
    value: peer.persistent_keepalive === null ? "" : String(peer.persistent_keepalive),
    hint: "0 to 3600, empty for none.",
  });
  const expiryValue = toLocalInput(peer.expires_at);
  const expires = field({
    id: "peer-edit-expires",
    name: "expires_at",
    label: "Expires",
    type: "datetime-local",
    value: expiryValue,
    hint: "Empty for never. An expired peer is off the interface until the date is moved.",
  });
  const input = (wrapper) => wrapper.querySelector("input");
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "peer-edit-submit" }, "Save changes");
  const form = h(
    "form",
    { id: "peer-edit-form", novalidate: true },
    h("div", { class: "grid-2" }, tunnel, h("div", {}, keepalive, expires)),
    h("div", { class: "actions" }, h("span", { class: "spacer" }), submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const body = {};
    if (checkedValue(tunnel) && checkedValue(tunnel) !== peer.tunnel) body.tunnel = checkedValue(tunnel);
    const keep = readKeepalive(input(keepalive).value);
    if (keep !== peer.persistent_keepalive) body.persistent_keepalive = keep;
    if (input(expires).value !== expiryValue) {
      body.expires_at = input(expires).value ? fromLocalInput(input(expires).value) || input(expires).value : null;
    }
    if (Object.keys(body).length === 0) {
      setAlert(alert, "Nothing has changed.", "info");
      return;
    }
    busy(submit, async () => {
      try {
        const updated = await api(peerApi(peer.name), { method: "PUT", body });
        saved(updated, "Changes saved.");
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  return h("div", {}, alert, form);
}

/** The portal: a one-time invitation link, unless the peer has a login already. */
function portalSection(peer) {
  if (peer.has_portal_login) {
    return h(
      "p",
      { id: "peer-portal-state" },
      `${peer.name} has a portal login: they sign in at `,
      h("code", {}, `${window.location.origin}/login`),
      ` with the name ${peer.name}, and can download their own config and rotate their keys there.`,
    );
  }
  const alert = alertRegion("peer-invite-alert");
  const result = h("div", { id: "peer-invite-result", class: "follow-up" });
  const validity = h(
    "select",
    {
      id: "peer-invite-hours",
      "data-field": "valid_hours",
      "data-label": "Valid for",
      "aria-describedby": "peer-invite-hours-error",
    },
    INVITE_VALIDITY.map((v) => h("option", { value: v.hours, selected: v.hours === DEFAULT_INVITE_HOURS }, v.label)),
  );
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary", id: "peer-invite-submit" },
    "Create invitation link",
  );
  const form = h(
    "form",
    { id: "peer-invite-form", class: "inline-form", novalidate: true },
    h(
      "div",
      { class: "field" },
      h("label", { for: "peer-invite-hours" }, "Valid for"),
      validity,
      h("p", { class: "field-error", id: "peer-invite-hours-error", hidden: true }),
    ),
    submit,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    busy(submit, async () => {
      try {
        const invite = await api(peerApi(peer.name, "/invite"), {
          method: "POST",
          body: { valid_hours: Number(validity.value) },
        });
        replace(
          result,
          secretField({
            id: "peer-invite-link",
            label: "Invitation link",
            value: `${window.location.origin}${invite.url}`,
            hint: `Works once, until ${formatTime(invite.expires_at)}. Whoever opens it can set the password for ${peer.name}.`,
          }),
          onceWarning("Send it to the peer over a channel you trust; creating another link does not cancel this one."),
        );
        result.querySelector("input").focus();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  return h(
    "div",
    {},
    h(
      "p",
      { class: "muted" },
      `${peer.name} has no portal login yet. An invitation link lets them choose a password, then see their own config and QR code and rotate their keys.`,
    ),
    alert,
    form,
    result,
  );
}

export function mount(root, _params, ctx, name) {
  const alert = alertRegion("peer-alert");
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  const heading = h("h1", { id: "peer-title" }, name);
  const badges = h("span", { id: "peer-badges" });
  const toolbar = h("div", { class: "toolbar" });
  replace(
    root,
    h("p", { class: "back" }, h("a", { href: "#/peers", id: "peer-back" }, "← All peers")),
    h("div", { class: "page-head" }, h("div", { class: "title-row" }, heading, badges), toolbar),
    alert,
    body,
  );
  let peer = null;
  let gone = false;
  const detail = h("div", {});
  const live = h("div", {});
  const portal = h("div", {});
  const settings = h("div", {});

  function renderState() {
    replace(badges, stateBadges(peer));
    replace(detail, detailFacts(peer));
    replace(live, liveFacts(peer));
  }

  function renderToolbar() {
    const toggle = h(
      "button",
      { type: "button", class: "btn", id: "peer-toggle" },
      peer.enabled ? "Disable" : "Enable",
    );
    toggle.addEventListener("click", () =>
      busy(toggle, async () => {
        try {
          const updated = await api(peerApi(peer.name), { method: "PUT", body: { enabled: !peer.enabled } });
          saved(
            updated,
            updated.enabled
              ? `${peer.name} is enabled.`
              : `${peer.name} is disabled: its device cannot connect until it is enabled again.`,
          );
        } catch (error) {
          setAlert(alert, error.message);
        }
      }),
    );
    const remove = h(
      "button",
      { type: "button", class: "btn btn-danger", id: "peer-delete", onclick: confirmDelete },
      "Delete",
    );
    replace(toolbar, toggle, remove);
  }

  function saved(updated, message) {
    peer = updated;
    renderState();
    renderToolbar();
    setAlert(alert, "");
    ctx.flash(message);
  }

  /** The config (and so the QR code) carries tunnel and keepalive: show the new one. */
  function settingsSaved(updated, message) {
    saved(updated, message);
    replace(settings, settingsForm(peer, settingsSaved));
    const image = document.getElementById("peer-qr");
    if (image) {
      reloadQr(image, peerApi(peer.name, "/qr")).catch((error) => setAlert(alert, error.message));
    }
  }

  function confirmDelete() {
    openDialog({
      id: "peer-delete-dialog",
      title: `Delete ${peer.name}?`,
      body: h(
        "p",
        {},
        `Its device loses access at once, its addresses ${peer.address_v4} and ${peer.address_v6} are freed`,
        peer.has_portal_login ? " and its portal login is removed" : "",
        ". This cannot be undone.",
      ),
      confirmLabel: "Delete peer",
      danger: true,
      action: async () => {
        await api(peerApi(peer.name), { method: "DELETE" });
        ctx.navigate("#/peers", `${peer.name} was deleted.`);
      },
    });
  }

  function render() {
    renderState();
    renderToolbar();
    replace(portal, portalSection(peer));
    replace(settings, settingsForm(peer, settingsSaved));
    replace(
      body,
      h("div", { class: "grid-cards" }, card("peer-details", "Details", detail), card("peer-live", "WireGuard", live)),
      card(
        "peer-connect",
        "Connect the device",
        onboarding({
          name: peer.name,
          qrUrl: peerApi(peer.name, "/qr"),
          configUrl: peerApi(peer.name, "/config"),
          generated: peer.key_source === "generated",
          idPrefix: "peer-",
        }),
      ),
      card("peer-settings", "Settings", settings),
      card("peer-network", "Network access", networkAccess(peer.name, (m) => ctx.flash(m))),
      card("peer-portal", "Peer portal", portal),
    );
  }

  async function load(initial) {
    try {
      const data = await api(peerApi(name));
      if (gone) return;
      peer = data;
      setAlert(alert, "");
      if (initial) {
        render();
        ctx.setTitle(peer.name);
      } else {
        renderState();
      }
    } catch (error) {
      if (!(error instanceof ApiError) || gone) throw error;
      if (error.status === 404) {
        replace(
          body,
          h(
            "p",
            { class: "empty" },
            `There is no peer named “${name}”. `,
            h("a", { href: "#/peers" }, "See all peers."),
          ),
        );
        replace(toolbar);
        clearInterval(timer);
      } else {
        setAlert(alert, error.message);
      }
    }
  }

  load(true);
  // Live state only: the forms keep what is being typed.
  const timer = setInterval(() => peer && load(false), REFRESH_SECONDS * 1000);
  return {
    destroy() {
      gone = true;
      clearInterval(timer);
    },
  };
}
