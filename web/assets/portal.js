// The peer portal (/portal): a signed-in peer's own device. Its QR code and config, its
// addresses, its accounts in the cell's services, rotating its keys, and its password.
// Every call is about "me": the server finds the peer from the session, so this page never
// names a peer.

import { api, ApiError } from "./api.js";
import { brandMark, busy, formatTime, h, replace } from "./dom.js";
import { openDialog } from "./dialog.js";
import { alertRegion, clearErrors, field, markInvalid, setAlert, showErrors } from "./forms.js";
import { onboarding, reloadQr } from "./onboarding.js";
import { servicesCard } from "./portalservices.js";
import { guardAgainstBack, wipeSecrets } from "./secret.js";

const QR_URL = "/api/peer/qr";
const CONFIG_URL = "/api/peer/config";
const FLASH_SECONDS = 8;
const TUNNEL_LABELS = {
  full: "Full tunnel: all traffic goes through the cell",
  split: "Split tunnel: only the cell's networks",
};

const view = document.getElementById("view");
const flashRegion = document.getElementById("flash");
let flashTimer = null;

document.getElementById("brand").prepend(brandMark());

function flash(text) {
  clearTimeout(flashTimer);
  flashRegion.textContent = text;
  flashTimer = setTimeout(() => (flashRegion.textContent = ""), FLASH_SECONDS * 1000);
}

function card(id, title, ...content) {
  return h(
    "section",
    { class: "card", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title),
    ...content,
  );
}

function facts(peer) {
  return h(
    "dl",
    { class: "facts", id: "portal-facts" },
    [
      ["Device name", peer.name],
      ["IPv4 address", h("code", {}, peer.address_v4)],
      ["IPv6 address", h("code", {}, peer.address_v6)],
      ["Tunnel", TUNNEL_LABELS[peer.tunnel] || peer.tunnel],
      ["Public key", h("code", { class: "key", id: "portal-public-key" }, peer.public_key)],
      ["Access", peer.enabled ? "Enabled" : "Disabled by the cell's owner"],
      ["Expires", peer.expires_at ? formatTime(peer.expires_at) : "Never"],
    ].map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

/** Rotating keys: picd makes a new pair, or (for a device with its own) takes the new public key. */
function rotateSection(peer, rotated) {
  const result = h("div", { id: "portal-rotate-result", class: "follow-up" });
  const ownKey =
    peer.key_source === "client"
      ? field({
          id: "portal-new-key",
          name: "public_key",
          label: "The device's new public key",
          placeholder: "base64, 44 characters",
        })
      : null;
  const button = h("button", { type: "button", class: "btn", id: "portal-rotate" }, "Rotate my keys");
  button.addEventListener("click", () =>
    openDialog({
      id: "portal-rotate-dialog",
      title: "Rotate your keys?",
      body:
        "Your device's current config stops working at once. Afterwards, scan the new QR code " +
        "or import the new config on the device to connect again.",
      confirmLabel: "Rotate keys",
      action: async () => {
        const body = ownKey ? { public_key: ownKey.querySelector("input").value.trim() } : {};
        try {
          rotated(await api("/api/peer/rotate-keys", { method: "POST", body }), result);
        } catch (error) {
          // A refused key belongs next to its input, not in the dialog.
          if (ownKey && error instanceof ApiError && error.fields.public_key) {
            markInvalid(ownKey.querySelector("input"), error.fields.public_key);
            return;
          }
          throw error;
        }
      },
    }),
  );
  return h(
    "div",
    {},
    h(
      "p",
      {},
      "New keys make any copy of your old config useless, for example if a device was lost or a file was shared by mistake.",
    ),
    ownKey,
    h("div", { class: "actions" }, button),
    result,
  );
}

function passwordSection(username) {
  const alert = alertRegion("portal-password-alert");
  const current = field({
    id: "portal-current-password",
    name: "current_password",
    label: "Current password",
    type: "password",
    autocomplete: "current-password",
  });
  const next = field({
    id: "portal-new-password",
    name: "new_password",
    label: "New password",
    type: "password",
    autocomplete: "new-password",
    hint: "At least 10 characters. Your other sessions will be signed out.",
  });
  const confirm = field({
    id: "portal-confirm-password",
    label: "Confirm new password",
    type: "password",
    autocomplete: "new-password",
  });
  const input = (wrapper) => wrapper.querySelector("input");
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary", id: "portal-password-submit" },
    "Change password",
  );
  // A hidden username lets password managers file the new password under the right account.
  const user = h("input", { type: "text", autocomplete: "username", value: username, hidden: true, readonly: true });
  const form = h(
    "form",
    { id: "portal-password-form", novalidate: true },
    user,
    current,
    h("div", { class: "grid-2" }, next, confirm),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    if (input(next).value !== input(confirm).value) {
      markInvalid(input(confirm), "does not match the new password").focus();
      return;
    }
    busy(submit, async () => {
      try {
        const answer = await api("/api/auth/change-password", {
          method: "POST",
          body: { current_password: input(current).value, new_password: input(next).value },
        });
        form.reset();
        const others = answer.other_sessions_ended;
        setAlert(alert, `Password changed.${others ? ` ${others} other session(s) were signed out.` : ""}`, "ok");
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status === 429) {
          setAlert(alert, `Too many wrong passwords. Try again in ${error.retryAfter || 60} seconds.`);
        } else {
          if (error.fields.current_password) error.fields.current_password = "is not correct";
          showErrors(form, error, alert);
        }
      }
    });
  });
  return h("div", {}, alert, form);
}

function render(peer, username) {
  const alert = alertRegion("portal-alert");
  const details = h("div", {}, facts(peer));
  function rotated(updated, result) {
    replace(details, facts(updated));
    replace(
      result,
      h(
        "div",
        { class: "alert alert-info", role: "status" },
        h("strong", {}, "New keys are ready. "),
        "The config on your device stopped working just now: scan the new QR code above, or download the new config, to connect again.",
      ),
    );
    const image = document.getElementById("portal-qr");
    if (image) {
      reloadQr(image, QR_URL).catch((error) => setAlert(alert, error.message));
    }
    document.getElementById("portal-connect").scrollIntoView({ block: "start" });
    flash("Your keys were rotated.");
  }
  replace(
    view,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, `Your device: ${peer.name}`),
        h("p", {}, "Connect it to the cell, and keep its keys fresh."),
      ),
    ),
    alert,
    peer.enabled
      ? null
      : h(
          "div",
          { class: "alert alert-info" },
          "The cell's owner has disabled this device: it cannot connect for now.",
        ),
    card(
      "portal-connect",
      "Connect your device",
      onboarding({
        name: peer.name,
        qrUrl: QR_URL,
        configUrl: CONFIG_URL,
        generated: peer.key_source === "generated",
        idPrefix: "portal-",
      }),
    ),
    card("portal-details", "Your device in the cell", details),
    servicesCard(),
    card("portal-keys", "Keys", rotateSection(peer, rotated)),
    card("portal-password", "Password", passwordSection(username)),
  );
}

function logoutButton() {
  const button = document.getElementById("logout");
  button.addEventListener("click", () =>
    busy(button, async () => {
      try {
        await api("/api/auth/logout", { method: "POST", redirect: false });
      } catch {
        // Signed out already, or picd is gone: either way the login page is where to go.
      }
      // The config, QR code and keys leave the page before the browser may keep it for Back.
      wipeSecrets();
      view.replaceChildren();
      window.location.assign("/login");
    }),
  );
}

async function start() {
  try {
    const me = await api("/api/auth/me");
    if (me.user && me.user.role !== "peer") {
      // The owner has the admin app; this page is for peers.
      window.location.replace("/");
      return;
    }
    document.getElementById("portal-user").textContent = `Signed in as ${me.user.username}`;
    const peer = await api("/api/peer/me");
    document.title = `${peer.name} · Peer portal`;
    render(peer, me.user.username);
  } catch (error) {
    const alert = alertRegion("portal-alert");
    replace(view, alert, h("button", { type: "button", class: "btn", onclick: start }, "Try again"));
    setAlert(alert, error.message);
  }
}

guardAgainstBack();
logoutButton();
start();
