// Getting a device onto the cell: the QR code the WireGuard apps scan, the wg-quick file to
// download, and the warning that both carry the device's private key. Shared by the admin's
// peer pages and the peer portal.

import { h } from "./dom.js";

/**
 * The QR code as an <img> of a same-origin URL (the CSP allows img-src 'self'). When it does
 * not load, a sentence says so instead of a broken image.
 */
export function qrImage(url, alt, id) {
  const frame = h("div", { class: "qr-frame" });
  const image = h("img", { class: "qr", id, src: url, alt, width: "240", height: "240" });
  image.addEventListener("error", () => {
    if (!image.src.startsWith("data:")) {
      frame.replaceChildren(
        h("p", { class: "qr-missing" }, "The QR code could not be loaded. Download the config instead."),
      );
    }
  });
  frame.append(image);
  return frame;
}

/**
 * Loads the QR again after the keys changed. The URL stays the same, so the browser could
 * show the image it already has: fetch it afresh and hand it over as a data: URL.
 */
export async function reloadQr(image, url) {
  const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) {
    throw new Error(`The new QR code could not be loaded (HTTP ${response.status}).`);
  }
  const blob = await response.blob();
  const dataUrl = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
  image.src = dataUrl;
}

export const PRIVATE_KEY_WARNING =
  "The QR code and the config file contain this device's private key. Show or send them only to " +
  "the device they belong to, and delete any copy once it is imported.";

/**
 * The onboarding block: QR code (when picd holds the private key), how to use it, the config
 * download and the warning. `ids` prefixes element ids.
 */
export function onboarding({ name, qrUrl, configUrl, generated, idPrefix }) {
  const download = h(
    "a",
    { class: "btn", id: `${idPrefix}download`, href: configUrl, download: `${name}.conf` },
    "Download config",
  );
  if (!generated) {
    return h(
      "div",
      { class: "onboard onboard-nokey" },
      h(
        "div",
        { class: "onboard-text" },
        h(
          "p",
          {},
          "This device brought its own key pair, so the cell has no private key to put in a QR code. ",
          "The config file leaves a line for the device's own private key.",
        ),
        h("div", { class: "actions" }, download),
      ),
    );
  }
  return h(
    "div",
    { class: "onboard" },
    qrImage(qrUrl, `WireGuard QR code for ${name}`, `${idPrefix}qr`),
    h(
      "div",
      { class: "onboard-text" },
      h(
        "ol",
        { class: "onboard-steps" },
        h("li", {}, "Install the WireGuard app on the device."),
        h("li", {}, "In the app, add a tunnel and choose to scan a QR code."),
        h("li", {}, "Scan this code, name the tunnel, and switch it on."),
      ),
      h(
        "p",
        { class: "muted small" },
        "Setting up this same phone, or a computer? Download the config and import it in the WireGuard app instead.",
      ),
      h("div", { class: "alert alert-warn", role: "note" }, h("strong", {}, "Keep it private. "), PRIVATE_KEY_WARNING),
      h("div", { class: "actions" }, download),
    ),
  );
}
