// The cell and DNS inputs, shared by the wizard and the settings page. `prefix` is what the
// API puts before field names ("" in the wizard, "cell." / "dns." for PUT /api/config).

import { h } from "./dom.js";
import { errorLine, field } from "./forms.js";

const DEFAULT_PORT = "51820";
const DEFAULT_SUBNET_V4 = "10.77.0.0/24";
const DEFAULT_SUBNET_V6 = "fd77:77::/64";
// Quad9, a filtering resolver without logging, over both address families.
const DEFAULT_UPSTREAMS = ["9.9.9.9", "2620:fe::fe"];
const MAX_UPSTREAMS = 4;

const CELL_INPUTS = [
  {
    name: "name",
    label: "Cell name",
    placeholder: "home",
    hint: "A short lowercase name: letters, digits and hyphens.",
  },
  {
    name: "domain",
    label: "Domain",
    placeholder: "home.example",
    hint: "Services appear as <service>.<domain> inside the cell.",
  },
  {
    name: "public_endpoint",
    label: "Public endpoint",
    placeholder: "vpn.example.org or 203.0.113.10",
    hint: "The host name or IP address WireGuard apps dial from the internet.",
  },
  {
    name: "wireguard_port",
    label: "WireGuard port",
    placeholder: DEFAULT_PORT,
    inputmode: "numeric",
    hint: "UDP port, usually 51820.",
  },
  {
    name: "subnet_v4",
    label: "IPv4 subnet",
    placeholder: DEFAULT_SUBNET_V4,
    hint: "A private range for peers, /16 to /29.",
  },
  {
    name: "subnet_v6",
    label: "IPv6 subnet",
    placeholder: DEFAULT_SUBNET_V6,
    hint: "A unique local range inside fd00::/8, /48 to /120.",
  },
];

/** The cell's identity. `data` (from the API) fills it; without it, the defaults do. */
export function cellSection(prefix, idPrefix, data) {
  const values = data || {
    wireguard_port: DEFAULT_PORT,
    subnet_v4: DEFAULT_SUBNET_V4,
    subnet_v6: DEFAULT_SUBNET_V6,
  };
  const inputs = {};
  const fields = CELL_INPUTS.map((spec) => {
    const element = field({
      ...spec,
      id: `${idPrefix}${spec.name}`,
      name: `${prefix}${spec.name}`,
      value: values[spec.name] === undefined ? "" : String(values[spec.name]),
    });
    inputs[spec.name] = element.querySelector("input");
    return element;
  });
  const element = h(
    "div",
    {},
    h("div", { class: "grid-2" }, fields[0], fields[1]),
    h("div", { class: "grid-endpoint" }, fields[2], fields[3]),
    h("div", { class: "grid-2" }, fields[4], fields[5]),
  );
  // The port goes out as a number when it is one; anything else is sent as typed so the
  // API names the problem in its own words.
  function read() {
    const value = {};
    for (const spec of CELL_INPUTS) {
      value[spec.name] = inputs[spec.name].value.trim();
    }
    const port = value.wireguard_port;
    if (port === "") {
      delete value.wireguard_port;
    } else if (/^\d+$/.test(port)) {
      value.wireguard_port = Number(port);
    }
    return value;
  }
  return { element, read, inputs };
}

/** Upstream resolvers (a list of 1 to 4 inputs) and the split-horizon switch. */
export function dnsSection(prefix, idPrefix, data) {
  const values = data || { upstreams: DEFAULT_UPSTREAMS, split_horizon: true };
  const list = h("ul", {
    class: "list-input",
    id: `${idPrefix}upstreams`,
    "data-field": `${prefix}upstreams`,
    "data-label": "Upstream resolvers",
    "aria-describedby": `${idPrefix}upstreams-hint ${idPrefix}upstreams-error`,
  });
  const addButton = h(
    "button",
    { type: "button", class: "btn btn-small", id: `${idPrefix}add-upstream`, onclick: () => addRow("", true) },
    "Add resolver",
  );
  let rowCount = 0;

  function renumber() {
    const rows = [...list.children];
    rows.forEach((row, i) => {
      row.querySelector("input").setAttribute("aria-label", `Upstream resolver ${i + 1}`);
      row.querySelector("input").dataset.label = `Resolver ${i + 1}`;
      const remove = row.querySelector("button");
      remove.setAttribute("aria-label", `Remove resolver ${i + 1}`);
      remove.disabled = rows.length === 1;
    });
    addButton.disabled = rows.length >= MAX_UPSTREAMS;
  }

  function addRow(value, focus) {
    rowCount += 1;
    const id = `${idPrefix}upstream-${rowCount}`;
    const input = h("input", {
      id,
      type: "text",
      placeholder: "9.9.9.9",
      autocomplete: "off",
      autocapitalize: "none",
      spellcheck: "false",
      "aria-describedby": `${id}-error`,
    });
    input.value = value;
    const row = h(
      "li",
      {},
      h(
        "div",
        { class: "row" },
        input,
        h(
          "button",
          {
            type: "button",
            class: "btn btn-icon btn-quiet",
            onclick: () => {
              row.remove();
              renumber();
              list.querySelector("input")?.focus();
            },
          },
          "✕",
        ),
      ),
      errorLine(id),
    );
    list.append(row);
    renumber();
    if (focus) {
      input.focus();
    }
  }

  for (const upstream of values.upstreams.length ? values.upstreams : [""]) {
    addRow(upstream, false);
  }

  const split = h("input", {
    id: `${idPrefix}split_horizon`,
    type: "checkbox",
    "data-field": `${prefix}split_horizon`,
    "data-label": "Split horizon",
    "aria-describedby": `${idPrefix}split_horizon-hint ${idPrefix}split_horizon-error`,
  });
  split.checked = values.split_horizon !== false;

  const element = h(
    "div",
    {},
    h(
      "fieldset",
      {},
      h("legend", {}, "Upstream resolvers"),
      h(
        "p",
        { class: "hint muted small", id: `${idPrefix}upstreams-hint` },
        `Where the cell forwards names it does not know itself: 1 to ${MAX_UPSTREAMS} IP addresses.`,
      ),
      list,
      errorLine(`${idPrefix}upstreams`),
      addButton,
    ),
    h(
      "div",
      { class: "check" },
      split,
      h(
        "div",
        {},
        h("label", { for: split.id }, "Split horizon"),
        h(
          "p",
          { class: "hint", id: `${idPrefix}split_horizon-hint` },
          "Peers resolve the cell's names to addresses inside the cell; the rest of the world sees only public records.",
        ),
        errorLine(split.id),
      ),
    ),
  );

  // Blank rows are left out; the rows that are sent are tagged with their index in the
  // request, so "upstreams[1]" in an error finds the second non-blank row.
  function read() {
    const upstreams = [];
    for (const input of list.querySelectorAll("input")) {
      const value = input.value.trim();
      if (value) {
        input.dataset.field = `${prefix}upstreams[${upstreams.length}]`;
        upstreams.push(value);
      } else {
        delete input.dataset.field;
      }
    }
    return { upstreams, split_horizon: split.checked };
  }
  return { element, read };
}
