// #/settings: GET /api/config in a form, saved whole with PUT /api/config (the same shape,
// so a save without edits changes nothing).

import { api, ApiError } from "./api.js";
import { cellSection, dnsSection } from "./cellform.js";
import { tlsSection } from "./tlsform.js";
import { busy, formatTime, h, replace } from "./dom.js";
import { alertRegion, clearErrors, setAlert, showErrors } from "./forms.js";

function facts(config) {
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Setup completed"),
    h("dd", {}, config.setup_completed_at ? formatTime(config.setup_completed_at) : "—"),
    h("dt", {}, "Last changed"),
    h("dd", {}, config.updated_at ? formatTime(config.updated_at) : "—"),
  );
}

function card(titleId, title, ...content) {
  return h("section", { class: "card", "aria-labelledby": titleId }, h("h2", { id: titleId }, title), ...content);
}

function settingsForm(config, ctx, alert, reload) {
  const cell = cellSection("cell.", "settings-cell-", config.cell);
  const dns = dnsSection("dns.", "settings-dns-", config.dns);
  const tls = tlsSection("tls.", "settings-tls-", config.tls);
  const meta = h("div", {}, facts(config));
  const save = h("button", { type: "submit", class: "btn btn-primary", id: "settings-save" }, "Save changes");
  const form = h(
    "form",
    { id: "settings-form", novalidate: true },
    card("settings-cell-title", "Cell", cell.element),
    card("settings-dns-title", "DNS", dns.element),
    card("settings-tls-title", "TLS", tls.element),
    card("settings-about-title", "About", meta),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "btn", onclick: reload }, "Discard changes"),
      h("span", { class: "spacer" }),
      save,
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    busy(save, async () => {
      try {
        const saved = await api("/api/config", { method: "PUT", body: { cell: cell.read(), dns: dns.read(), tls: tls.read() } });
        ctx.setCell(saved.cell);
        replace(meta, facts(saved));
        setAlert(alert, "Settings saved.", "ok");
        alert.scrollIntoView({ block: "nearest" });
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
        if (!Object.keys(error.fields).length) alert.scrollIntoView({ block: "nearest" });
      }
    });
  });
  return form;
}

export function mount(root, _params, ctx) {
  const alert = alertRegion("settings-alert");
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Settings"), h("p", {}, "The cell's identity, DNS and certificates. Saved changes apply right away.")),
    ),
    alert,
    body,
  );

  async function load() {
    clearErrors(root, alert);
    try {
      const config = await api("/api/config");
      replace(body, settingsForm(config, ctx, alert, load));
    } catch (error) {
      setAlert(alert, error.message);
    }
  }
  load();
  return {};
}
