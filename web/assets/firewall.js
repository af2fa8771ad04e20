// #/firewall: the cell's firewall in one page: traffic (what reached the cell, what was
// dropped), the rules in evaluation order, the blocked and allowed addresses, templates and
// rate limits. Every change is recorded by picd and applied when it rebuilds its nftables
// table; when it cannot (no CAP_NET_ADMIN, routing off), the page says so and still works.

import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { rulesSection } from "./fwrules.js";
import { ipListSection } from "./iplist.js";
import { rateLimitSections } from "./ratelimits.js";
import { trafficSection } from "./traffic.js";

/** Counters, states and remaining times are refreshed this often while the page is open. */
const REFRESH_SECONDS = 30;
const TICK_SECONDS = 1;

/** A note when nftables is not applied: the lists still show what will be applied. */
async function nftablesNote(note) {
  try {
    const status = await api("/api/status");
    const nft = (status.subsystems || []).find((s) => s.name === "nftables");
    if (!nft || nft.state === "ok") {
      replace(note);
      return;
    }
    replace(
      note,
      h("strong", {}, nft.state === "unavailable" ? "The firewall is not applied. " : "The firewall needs attention. "),
      `nftables: ${nft.reason || nft.state}. Changes are still recorded and take effect once picd can apply them; until then they show as Pending.`,
    );
  } catch {
    // The sections report their own errors; the note stays empty.
    replace(note);
  }
}

export function mount(root, _params, ctx) {
  const note = h("div", { class: "alert alert-warn", id: "fw-nftables", role: "status" });
  const rules = rulesSection(ctx);
  const ipList = ipListSection(ctx);
  const limits = rateLimitSections(ctx, () => rules.load());
  const traffic = trafficSection();

  replace(
    root,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Firewall"),
        h("p", {}, "What may reach the cell: rules, blocked and allowed addresses, rate limits, and the traffic they see."),
      ),
      h(
        "nav",
        { class: "toolbar jump", "aria-label": "Sections of this page" },
        h("a", { href: "#fw-rules-card", "data-jump": "fw-rules-card" }, "Rules"),
        h("a", { href: "#ip-list-card", "data-jump": "ip-list-card" }, "Addresses"),
        h("a", { href: "#templates-card", "data-jump": "templates-card" }, "Templates"),
        h("a", { href: "#rl-card", "data-jump": "rl-card" }, "Rate limits"),
      ),
    ),
    note,
    traffic.element,
    rules.element,
    ipList.element,
    ...limits.elements,
  );
  // The hash is the router's: the section links scroll instead of navigating.
  for (const link of root.querySelectorAll("[data-jump]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const target = document.getElementById(link.dataset.jump);
      target.scrollIntoView({ block: "start" });
      target.querySelector("h2")?.setAttribute("tabindex", "-1");
      target.querySelector("h2")?.focus({ preventScroll: true });
    });
  }

  const refresh = () => Promise.all([nftablesNote(note), traffic.load(), rules.load(), ipList.load(), limits.load()]);
  refresh();
  limits.loadTemplates();
  const timer = setInterval(refresh, REFRESH_SECONDS * 1000);
  const ticker = setInterval(ipList.tick, TICK_SECONDS * 1000);
  return {
    destroy: () => {
      clearInterval(timer);
      clearInterval(ticker);
      traffic.destroy();
    },
  };
}
