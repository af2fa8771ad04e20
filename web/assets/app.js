// The admin app: header (cell, user, password, log out) and a hash router over the views.
// Each view module exports mount(root, params, ctx, id) -> { update?(params), destroy?() };
// `id` is what follows the section in a detail route (#/peers/<id>).

import { api, ApiError } from "./api.js";
import { brandMark, busy } from "./dom.js";
import { clearErrors, markInvalid, setAlert, showErrors } from "./forms.js";
import * as audit from "./audit.js";
import * as dns from "./dns.js";
import * as exits from "./exits.js";
import * as firewall from "./firewall.js";
import * as peer from "./peer.js";
import * as peers from "./peers.js";
import * as services from "./services.js";
import * as settings from "./settings.js";
import * as status from "./status.js";
import * as vault from "./vault.js";
import { guardAgainstBack, wipeSecrets } from "./secret.js";

// A key ending in "/" is a section's detail route: "peers/" serves #/peers/<id>.
const ROUTES = {
  status: { title: "Status", view: status },
  peers: { title: "Peers", view: peers },
  "peers/": { title: "Peer", view: peer },
  services: { title: "Services", view: services },
  vault: { title: "Vault", view: vault },
  dns: { title: "DNS", view: dns },
  firewall: { title: "Firewall", view: firewall },
  exits: { title: "Exits", view: exits },
  audit: { title: "Audit log", view: audit },
  settings: { title: "Settings", view: settings },
};
const FLASH_SECONDS = 8;

const main = document.getElementById("main");
const viewRoot = document.getElementById("view");
const flashRegion = document.getElementById("flash");
const nav = document.querySelector(".nav");
let flashTimer = null;
let pendingFlash = "";
let active = null;
let cellName = "";

document.getElementById("brand").prepend(brandMark());

/** What views may do to the page around them. */
const ctx = {
  setCell(cell) {
    if (!cell) return;
    cellName = cell.name;
    document.getElementById("cell-name").textContent = cell.name;
    document.getElementById("cell-domain").textContent = cell.domain;
    setTitle();
  },
  flash(text) {
    clearTimeout(flashTimer);
    flashRegion.textContent = text;
    flashTimer = setTimeout(() => (flashRegion.textContent = ""), FLASH_SECONDS * 1000);
  },
  /** Names the current view in the window title (a detail view names its item). */
  setTitle(text) {
    if (active) active.title = text;
    setTitle();
  },
  /** Goes to another view and shows `text` there (a route change clears the flash). */
  navigate(hash, text) {
    pendingFlash = text || "";
    window.location.hash = hash;
  },
};

function setTitle() {
  const route = active && ROUTES[active.name];
  const title = (active && active.title) || (route && route.title);
  document.title = [title, cellName || "picd"].filter(Boolean).join(" · ");
}

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const [section, ...rest] = path.split("/");
  const params = new URLSearchParams(query);
  if (rest.length && rest.join("/")) {
    let id = rest.join("/");
    try {
      id = decodeURIComponent(id);
    } catch {
      // A malformed escape stays as typed; the view reports the item as not found.
    }
    return { name: `${section}/`, section, id, params };
  }
  return { name: section, section, id: null, params };
}

function route(initial = false) {
  const { name, section, id, params } = parseHash();
  if (!ROUTES[name]) {
    window.location.replace("#/status");
    return;
  }
  for (const link of document.querySelectorAll(".nav a")) {
    if (link.dataset.route === section) {
      link.setAttribute("aria-current", "page");
      // On a phone the row scrolls: the current section is always in sight.
      if (nav.scrollWidth > nav.clientWidth) link.scrollIntoView({ block: "nearest", inline: "nearest" });
    } else {
      link.removeAttribute("aria-current");
    }
  }
  // Paging or filtering the same view keeps it (and the focus inside it).
  if (active && active.name === name && active.id === id && active.instance.update) {
    active.instance.update(params);
    return;
  }
  if (active && active.instance.destroy) {
    active.instance.destroy();
  }
  // A dialog a view opened belongs to that view.
  for (const dialog of document.querySelectorAll("dialog[open]")) {
    dialog.close();
  }
  flashRegion.textContent = "";
  if (pendingFlash) {
    ctx.flash(pendingFlash);
    pendingFlash = "";
  }
  viewRoot.replaceChildren();
  active = { name, id, title: null, instance: {} };
  setTitle();
  active.instance = ROUTES[name].view.mount(viewRoot, params, ctx, id) || {};
  if (!initial) {
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}

/** Marks the nav row when sections lie past either edge (it scrolls on a phone). */
function navOverflow() {
  const mark = () => {
    nav.classList.toggle("nav-more", nav.scrollLeft + nav.clientWidth < nav.scrollWidth - 1);
    nav.classList.toggle("nav-less", nav.scrollLeft > 1);
  };
  nav.addEventListener("scroll", mark, { passive: true });
  window.addEventListener("resize", mark);
  mark();
}

/** The account menu closes like a menu: on Escape, on a click elsewhere, after a choice. */
function userMenu() {
  const menu = document.getElementById("user-menu");
  document.addEventListener("click", (event) => {
    if (menu.open && (!menu.contains(event.target) || event.target.closest(".menu-item"))) {
      menu.open = false;
    }
  });
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menu.open) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
}

function passwordDialog() {
  const dialog = document.getElementById("password-dialog");
  const form = document.getElementById("password-form");
  const alert = document.getElementById("password-alert");
  const submit = document.getElementById("password-submit");
  const current = document.getElementById("current-password");
  const next = document.getElementById("new-password");
  const confirm = document.getElementById("confirm-password");

  document.getElementById("change-password").addEventListener("click", () => {
    form.reset();
    clearErrors(form, alert);
    dialog.showModal();
    current.focus();
  });
  // However it closes (changed, cancelled, Escape), no password stays in its fields.
  dialog.addEventListener("close", () => {
    form.reset();
    clearErrors(form, alert);
  });
  document.getElementById("password-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    if (next.value !== confirm.value) {
      markInvalid(confirm, "does not match the new password").focus();
      return;
    }
    await busy(submit, async () => {
      try {
        const answer = await api("/api/auth/change-password", {
          method: "POST",
          body: { current_password: current.value, new_password: next.value },
        });
        dialog.close();
        const others = answer.other_sessions_ended;
        ctx.flash(`Password changed.${others ? ` ${others} other session(s) were signed out.` : ""}`);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status === 429) {
          setAlert(alert, `Too many wrong passwords. Try again in ${error.retryAfter || 60} seconds.`);
        } else {
          if (error.fields.current_password) {
            error.fields.current_password = "is not correct";
          }
          showErrors(form, error, alert);
        }
      }
    });
  });
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
      // Nothing of the session stays on the page the browser may keep for Back.
      wipeSecrets();
      if (active && active.instance.destroy) active.instance.destroy();
      active = null;
      viewRoot.replaceChildren();
      window.location.assign("/login");
    }),
  );
}

guardAgainstBack();

async function start() {
  const me = await api("/api/auth/me");
  // Peers have their own page; the admin app would only answer them with 403s.
  if (me.user && me.user.role === "peer") {
    window.location.replace("/portal");
    return;
  }
  document.getElementById("user-name").textContent = me.user.username;
  document.getElementById("user-initial").textContent = me.user.username.slice(0, 1);
  document.getElementById("menu-user").textContent = me.user.username;
  document.querySelector("#user-menu summary").setAttribute("aria-label", `Account menu, signed in as ${me.user.username}`);
  userMenu();
  navOverflow();
  passwordDialog();
  logoutButton();
  window.addEventListener("hashchange", () => route());
  route(true);
  try {
    const config = await api("/api/config");
    ctx.setCell(config.cell);
  } catch {
    // The views report their own errors; the header keeps its placeholder.
  }
}

start();
