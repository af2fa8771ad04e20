// #/services: the service store (install with live progress, remove keeping or purging the
// data), each installed service's health and container, its accounts, how long the data of
// deleted accounts is archived, and, while mail is installed, its mailboxes, quotas and
// aliases (svcmail.js). Without a Docker engine everything is still recorded, and the page
// says that picd starts the services once the engine answers.

import { api, ApiError } from "./api.js";
import { busy, h, replace } from "./dom.js";
import { alertRegion, clearErrors, field, setAlert, showErrors } from "./forms.js";
import { Refused, readNumber } from "./fwshared.js";
import { accountsSections } from "./svcaccounts.js";
import { mailSection } from "./svcmail.js";
import { storeSection } from "./svcstore.js";

/** Health and container states are refreshed this often while the page is open. */
const REFRESH_SECONDS = 30;
const RETENTION_MAX_DAYS = 3650;

function engineNote(note, engine) {
  if (engine) {
    replace(note);
    return;
  }
  replace(
    note,
    h("strong", {}, "The Docker engine is not answering. "),
    "Installs and accounts are still recorded; picd creates the containers once the engine answers.",
  );
}

function retentionSection(ctx, onSaved) {
  const alert = alertRegion("svc-retention-alert");
  const days = field({
    id: "svc-retention",
    name: "archive_retention_days",
    label: "Keep archived data for (days)",
    inputmode: "numeric",
    hint: "When an account is deleted (or its peer), its data is archived on the cell for this long, then deleted.",
  });
  const input = days.querySelector("input");
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "svc-retention-submit" }, "Save");
  days.classList.add("field-short");
  const form = h("form", { id: "svc-retention-form", novalidate: true }, days, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    let value;
    try {
      value = readNumber(input, { min: 1, max: RETENTION_MAX_DAYS, what: "a number of days" });
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      return;
    }
    busy(submit, async () => {
      try {
        const body = { archive_retention_days: value ?? 0 };
        const saved = await api("/api/services/settings", { method: "PUT", body });
        ctx.flash(`Archived data is kept for ${saved.archive_retention_days} days.`);
        onSaved(saved.archive_retention_days);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        showErrors(form, error, alert);
      }
    });
  });
  const element = h(
    "section",
    { class: "card", id: "svc-retention-card", "aria-labelledby": "svc-retention-title" },
    h("h2", { id: "svc-retention-title" }, "Archive of deleted accounts"),
    alert,
    form,
  );
  return {
    element,
    show: (value) => {
      if (document.activeElement !== input) input.value = String(value);
    },
  };
}

export function mount(root, _params, ctx) {
  const note = h("div", { class: "alert alert-warn", id: "svc-engine", role: "status" });
  const alert = alertRegion("svc-alert");
  let retentionDays = 30;
  const store = storeSection(ctx, () => load());
  const accounts = accountsSections(ctx, () => load());
  const mail = mailSection(ctx);
  const retention = retentionSection(ctx, (days) => {
    retentionDays = days;
    load();
  });

  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Services"),
        h("p", {}, "Files, calendars and more for everyone in the cell, each person with an account of their own."),
      ),
    ),
    note,
    alert,
    store.element,
    accounts.element,
    mail.element,
    retention.element,
  );

  async function load() {
    try {
      const [catalog, active, peers, settings] = await Promise.all([
        api("/api/store"),
        api("/api/services/active"),
        api("/api/peers"),
        api("/api/services/settings"),
      ]);
      retentionDays = settings.archive_retention_days;
      setAlert(alert, "");
      engineNote(note, active.engine);
      store.render(catalog, active);
      retention.show(retentionDays);
      await Promise.all([accounts.load(catalog.services, peers.peers, retentionDays), mail.load(catalog.services)]);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setAlert(alert, error.message);
    }
  }

  load();
  const timer = setInterval(load, REFRESH_SECONDS * 1000);
  return { destroy: () => clearInterval(timer) };
}
