// The Services page's store: one card per service of the catalog (what it is, its version,
// limits and image; health and container once installed), Install with its progress shown
// step by step as picd streams it, Restart, and Remove, which asks whether the data stays.

import { apiStream, api, ApiError } from "./api.js";
import { busy, formatBytes, h, replace } from "./dom.js";
import { openDialog } from "./dialog.js";
import { alertRegion, checkbox, checkedValue, choices, setAlert } from "./forms.js";
import { buildSection } from "./svcbuild.js";

const BUILD_COMMAND = "picd services build-images";
const STEP_LABELS = {
  image: "Image",
  volumes: "Data folders",
  config: "Config files",
  container: "Container",
  health: "Health check",
  route: "Web address (Caddy)",
  dns: "DNS name",
  done: "Done",
};
const HEALTH = {
  healthy: ["badge badge-ok", "Healthy"],
  unhealthy: ["badge badge-unavailable", "Unhealthy"],
  unknown: ["badge badge-degraded", "Unknown"],
};

/** What one progress event says beside its step. */
function stepDetail(event) {
  if (event.state === "failed") return event.error || "failed";
  if (event.state === "waiting") return event.reason || "waiting";
  if (event.step === "done") {
    return event.applied
      ? "Installed and running."
      : "Recorded. picd starts it as soon as the Docker engine answers.";
  }
  if (event.step === "image" && event.image_id) return event.image_id.slice(0, 19);
  if (event.step === "route" || event.step === "dns") return event.host || event.name || "";
  if (event.step === "health" && event.seconds !== undefined) return `${event.seconds.toFixed(1)} s`;
  return "";
}

const MARKS = { ok: "✓", failed: "✕", waiting: "…" };
const MARK_WORDS = { ok: "done", failed: "failed", waiting: "waiting" };

function stepItem(event) {
  const state = event.state || "ok";
  return h(
    "li",
    { class: `progress-step progress-${state}`, "data-step": event.step, "data-state": state },
    h("span", { class: "progress-mark", "aria-hidden": "true" }, MARKS[state] || "•"),
    h("span", { class: "progress-name" }, STEP_LABELS[event.step] || event.step),
    h("span", { class: "visually-hidden" }, `: ${MARK_WORDS[state] || state}`),
    h("span", { class: "progress-detail" }, stepDetail(event)),
  );
}

/**
 * The live list of an install: each event as it arrives, and a spinner on the step under
 * way until the stream ends. Returns { element, run() }.
 */
function installProgress(service, onFinished) {
  const list = h("ol", { class: "progress", id: `svc-progress-${service.id}`, "aria-live": "polite" });
  const working = h(
    "li",
    { class: "progress-step progress-working" },
    h("span", { class: "progress-mark spinner", "aria-hidden": "true" }),
    h("span", { class: "progress-name" }, "Working…"),
  );
  const alert = alertRegion(`svc-progress-${service.id}-alert`);
  const element = h(
    "div",
    { class: "progress-box" },
    h("h4", { class: "subhead" }, "Install progress"),
    list,
    alert,
  );
  async function run() {
    list.append(working);
    let failed = false;
    try {
      await apiStream("/api/store/install", { body: { id: service.id } }, (event) => {
        failed = failed || event.state === "failed";
        working.before(stepItem(event));
      });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      failed = true;
      setAlert(alert, error.message);
    } finally {
      working.remove();
    }
    onFinished(!failed);
  }
  return { element, run };
}

function facts(service, active, engine) {
  const rows = [
    ["Version", h("code", {}, service.version)],
    ["Limits", `${formatBytes(service.resources.memory_bytes)} memory, ${service.resources.pids} processes`],
    [
      "Image",
      service.image_id
        ? h("span", {}, "Built ", h("code", { class: "key" }, service.image_id.slice(0, 19)))
        : h("span", { class: "badge badge-degraded" }, "Not built"),
    ],
  ];
  if (service.installed) {
    const [klass, text] = HEALTH[active?.health] || HEALTH.unknown;
    rows.push(["Health", h("span", { class: klass, "data-health": active?.health || "unknown" }, text)]);
    const container = active?.container;
    const used = active?.resources;
    if (used && used.memory_bytes !== null && used.memory_bytes !== undefined) {
      rows.push([
        "In use",
        `${formatBytes(used.memory_bytes)} of ${formatBytes(used.memory_limit_bytes)} memory, ${used.pids ?? "?"} processes`,
      ]);
    }
    rows.push([
      "Container",
      container
        ? `${container.state}${container.status ? ` (${container.status})` : ""}`
        : engine
          ? "Not created yet"
          : "None: the Docker engine is not answering",
    ]);
  }
  return h(
    "dl",
    { class: "facts" },
    rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

/** Remove asks what happens to the data; a purge has to be confirmed in so many words. */
function removeDialog(service, onRemoved) {
  const what = choices({
    id: "svc-remove-data",
    name: "purge",
    label: "The service's data",
    value: "keep",
    options: [
      { value: "keep", label: "Keep the data", hint: "Files and accounts stay on the cell; installing it again brings them back." },
      { value: "purge", label: "Purge the data", hint: "The service's data and its accounts are deleted, archives included." },
    ],
  });
  const sure = checkbox({
    id: "svc-remove-sure",
    name: "sure",
    label: `I understand: the data of ${service.name} is destroyed and cannot be recovered`,
  });
  sure.hidden = true;
  what.addEventListener("change", () => {
    sure.hidden = checkedValue(what) !== "purge";
  });
  openDialog({
    id: "svc-remove-dialog",
    title: `Remove ${service.name}?`,
    body: h("div", {}, h("p", {}, "The container, its web address and its DNS name are removed."), what, sure),
    confirmLabel: "Remove service",
    danger: true,
    action: async () => {
      const purge = checkedValue(what) === "purge";
      const box = sure.querySelector("input");
      if (purge && !box.checked) {
        // Shown at the box like an API field error; nothing is sent.
        throw new ApiError(400, { error: "Confirm the purge.", fields: { sure: "Tick this box to destroy the data" } });
      }
      const answer = await api("/api/store/remove", { method: "POST", body: { id: service.id, purge } });
      onRemoved(answer);
    },
  });
}

/**
 * The store card: `render(store, active)` draws the catalog; an install under way keeps its
 * progress list across redraws. `onChanged` reloads the page's data.
 */
export function storeSection(ctx, onChanged) {
  const alert = alertRegion("svc-store-alert");
  const grid = h("div", { class: "templates", id: "svc-catalog" }, h("p", { class: "loading" }, "Loading…"));
  const progress = new Map();

  function install(service, button) {
    const run = installProgress(service, (ok) => {
      ctx.flash(ok ? `${service.name} was installed.` : `${service.name} was not installed.`);
      onChanged();
    });
    progress.set(service.id, run.element);
    button.closest(".template").append(run.element);
    return busy(button, run.run);
  }

  /** Restarts the service's container; says how it came back, or why it could not. */
  function restart(service, button) {
    return busy(button, async () => {
      try {
        const answer = await api(`/api/services/catalog/${encodeURIComponent(service.id)}/restart`, { method: "POST", body: {} });
        ctx.flash(
          answer.health === "healthy"
            ? `${service.name} was restarted and answers again.`
            : `${service.name} was restarted but does not answer: ${answer.reason}`,
        );
        onChanged();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        setAlert(alert, `${service.name} was not restarted: ${error.message}`);
      }
    });
  }

  function card(service, active, engine) {
    const installButton = h(
      "button",
      { type: "button", class: "btn btn-primary", id: `svc-install-${service.id}` },
      "Install",
    );
    installButton.addEventListener("click", () => install(service, installButton));
    const removeButton = h(
      "button",
      { type: "button", class: "btn btn-danger", id: `svc-remove-${service.id}` },
      "Remove",
    );
    removeButton.addEventListener("click", () =>
      removeDialog(service, (answer) => {
        progress.delete(service.id);
        ctx.flash(`${service.name} was removed${answer.purged ? ", and its data purged" : "; its data is kept"}.`);
        onChanged();
      }),
    );
    const restartButton = h(
      "button",
      { type: "button", class: "btn", id: `svc-restart-${service.id}` },
      "Restart",
    );
    restartButton.addEventListener("click", () => restart(service, restartButton));
    return h(
      "article",
      { class: "template service", id: `svc-card-${service.id}`, "data-installed": String(service.installed) },
      h(
        "div",
        { class: "template-head" },
        h("h3", {}, service.name),
        service.installed
          ? h("span", { class: "badge badge-ok" }, "Installed")
          : h("span", { class: "tag" }, "Not installed"),
      ),
      h("p", {}, service.description),
      facts(service, active, engine),
      service.image_id
        ? null
        : h(
            "p",
            { class: "hint", id: `svc-build-hint-${service.id}` },
            "No image is built for it yet: use Build images below, or run ",
            h("code", {}, BUILD_COMMAND),
            " on the cell (as root). Installing now records the service, and picd starts it once the image is there.",
          ),
      h("div", { class: "actions" }, ...(service.installed ? [restartButton, removeButton] : [installButton])),
      progress.get(service.id) || null,
    );
  }

  function render(store, active) {
    setAlert(alert, "");
    const byId = new Map((active.services || []).map((s) => [s.id, s]));
    replace(grid, store.services.map((s) => card(s, byId.get(s.id), active.engine)));
  }

  const element = h(
    "section",
    { class: "card", id: "svc-store-card", "aria-labelledby": "svc-store-title" },
    h("div", { class: "card-header" }, h("h2", { id: "svc-store-title" }, "Store")),
    h("p", { class: "card-lead muted" }, "Services run as containers on the cell, each at its own address under the cell's domain."),
    alert,
    grid,
    buildSection(onChanged).element,
  );
  return { element, render, fail: (error) => setAlert(alert, error.message) };
}
