// The peer portal's "Your services": the peer's account in each installed service (URL,
// username, the password hidden until Show, a copy button for each, how to set up a client)
// and a QR code for a phone app. The code shown by default holds the URL and the username
// only; one with the password is made only when the person asks for it.

import { api, ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { alertRegion, setAlert } from "./forms.js";
import { credentialFields } from "./svccreds.js";

const CREDENTIALS_URL = "/api/peer/service-credentials";

function qrUrl(service, withPassword) {
  const base = `${CREDENTIALS_URL}/${encodeURIComponent(service)}/qr`;
  return withPassword ? `${base}?password=true` : base;
}

/** The QR code of one login, and the button that puts the password into it (and out again). */
function loginQr(creds) {
  const id = `portal-svc-${creds.service}-qr`;
  const image = h("img", {
    class: "qr",
    id,
    src: qrUrl(creds.service, false),
    alt: `QR code with the address and username for ${creds.name}`,
    width: "176",
    height: "176",
  });
  const frame = h("div", { class: "qr-frame" }, image);
  image.addEventListener("error", () =>
    frame.replaceChildren(h("p", { class: "qr-missing" }, "The QR code could not be loaded. Copy the fields instead.")),
  );
  const caption = h("p", { class: "muted small", id: `${id}-caption` }, "Address and username, for a phone app. Your password is not in it.");
  const toggle = h(
    "button",
    { type: "button", class: "btn btn-small", id: `${id}-password`, "aria-pressed": "false", "aria-describedby": caption.id },
    "Put the password in the code",
  );
  toggle.addEventListener("click", () => {
    const include = toggle.getAttribute("aria-pressed") !== "true";
    image.src = qrUrl(creds.service, include);
    toggle.setAttribute("aria-pressed", String(include));
    toggle.textContent = include ? "Take the password out" : "Put the password in the code";
    caption.textContent = include
      ? "This code holds your password: let only your own device scan it."
      : "Address and username, for a phone app. Your password is not in it.";
    caption.className = include ? "small alert alert-warn" : "muted small";
  });
  return h("div", { class: "service-qr" }, frame, caption, toggle);
}

function login(creds) {
  return h(
    "article",
    { class: "service-login", id: `portal-svc-${creds.service}`, "aria-labelledby": `portal-svc-${creds.service}-title` },
    h(
      "div",
      {},
      h("h3", { id: `portal-svc-${creds.service}-title` }, creds.name),
      credentialFields(creds, `portal-svc-${creds.service}-`),
    ),
    creds.url ? loginQr(creds) : null,
  );
}

/** The card, filled once the credentials arrive. */
export function servicesCard() {
  const alert = alertRegion("portal-services-alert");
  const body = h("div", { id: "portal-services-list" }, h("p", { class: "loading" }, "Loading…"));
  (async () => {
    try {
      const data = await api(CREDENTIALS_URL);
      if (data.credentials.length === 0) {
        replace(body, h("p", { class: "muted" }, "The cell's owner has not given you an account in a service yet."));
        return;
      }
      replace(body, data.credentials.map(login));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(body);
      setAlert(alert, error.message);
    }
  })();
  return h(
    "section",
    { class: "card", id: "portal-services", "aria-labelledby": "portal-services-title" },
    h("h2", { id: "portal-services-title" }, "Your services"),
    h("p", { class: "card-lead muted" }, "Your own account in each of the cell's services. Keep the passwords to yourself."),
    alert,
    body,
  );
}
