// The Services page's image build: "Build images" runs the same build as
// `picd services build-images` on the cell and lists its steps as picd streams them (each
// service's root filesystem, from the cache or built from Debian packages, or its pull by
// digest when the owner's `service_images` names one, then its image).

import { apiStream, ApiError } from "./api.js";
import { busy, h } from "./dom.js";
import { alertRegion, setAlert } from "./forms.js";

const MARKS = { ok: "✓", failed: "✕" };

function label(event) {
  if (event.step === "done") return "Done";
  if (event.step === "failed") return "The build failed";
  if (event.step === "rootfs") {
    return `${event.service}: root filesystem ${event.cached ? "from the cache" : "built from Debian packages"}`;
  }
  if (event.step === "pull") {
    return event.status ? `${event.service}: ${event.layer || ""} ${event.status}` : `${event.service}: pulling ${event.reference}`;
  }
  if (event.step === "image") return `${event.service}: image ${event.pulled ? "pulled" : "imported"}`;
  return event.step;
}

function detail(event) {
  if (event.error) return event.error;
  if (event.image_id) return `${event.image_id.slice(0, 19)} (${event.seconds.toFixed(1)} s)`;
  if (event.step === "rootfs" && !event.cached) return "debootstrap and the service's packages: minutes";
  return "";
}

function item(event) {
  const state = event.state === "failed" || event.step === "failed" ? "failed" : "ok";
  return h(
    "li",
    { class: `progress-step progress-${state}`, "data-step": event.step, "data-state": state },
    h("span", { class: "progress-mark", "aria-hidden": "true" }, MARKS[state]),
    h("span", { class: "progress-name" }, label(event)),
    h("span", { class: "progress-detail" }, detail(event)),
  );
}

/** The build control: a button, and the live list of the last build's steps. */
export function buildSection(onBuilt) {
  const list = h("ol", { class: "progress", id: "svc-build-progress", "aria-live": "polite" });
  const alert = alertRegion("svc-build-alert");
  const button = h("button", { type: "button", class: "btn", id: "svc-build" }, "Build images");
  const working = h(
    "li",
    { class: "progress-step progress-working" },
    h("span", { class: "progress-mark spinner", "aria-hidden": "true" }),
    h("span", { class: "progress-name" }, "Building…"),
  );
  async function run() {
    setAlert(alert, "");
    list.replaceChildren(working);
    let ok = false;
    try {
      await apiStream("/api/store/build-images", { body: {} }, (event) => {
        ok = event.step === "done";
        working.before(item(event));
      });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setAlert(alert, error.message);
    } finally {
      working.remove();
    }
    if (ok) onBuilt();
  }
  button.addEventListener("click", () => busy(button, run));
  const element = h(
    "div",
    { id: "svc-build-box" },
    h("h3", { class: "subhead" }, "Images"),
    h(
      "p",
      { class: "hint" },
      "Images are built on the cell from Debian packages, without a registry. The first build takes minutes; later ones come from the cache.",
    ),
    h("div", { class: "actions" }, button),
    alert,
    list,
  );
  return { element };
}
