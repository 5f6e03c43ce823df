// The Policies pages, one per check as in ntopng: ACL, device/MAC tracking, allowed
// applications per device type, host policy, traffic profiles, traffic rules, and the file.
// Every change is one edit request to the collector, which validates it as `flowmesh policy
// validate` does: a refused edit changes nothing, and its problems (with the line numbers of
// the file it would have written) are shown next to the form that sent it.

import { el, show, problem } from "./dom.js";

const TABS = [
  ["acl", "Access Control List"],
  ["devices", "Device/MAC tracking"],
  ["apps", "Applications per device type"],
  ["hosts", "Host policy"],
  ["profiles", "Traffic profiles"],
  ["rules", "Traffic rules"],
  ["file", "Policy file"],
];

const ui = { collectors: [], collector: null, policy: null, tab: "acl", loading: false, error: null, seen: null, presets: null };

/**
 * A box filled with `draw(answer of op)` once the collector answers (the answer is kept in
 * `ui[key]`): only the box changes, so a form being filled in elsewhere on the page is not
 * reset when the answer comes.
 */
function answered(api, key, op, draw, attrs = {}) {
  const box = el("div", attrs);
  const fill = () => box.replaceChildren(...draw(ui[key] ?? []));
  box.refresh = () => {
    ui[key] = null;
    box.replaceChildren(el("p", { class: "note" }, "asking the collector…"));
    api.call(ui.collector, op).then((r) => { ui[key] = r; fill(); }).catch((e) => problem(box, e));
  };
  if (ui[key] !== null) fill();
  else box.refresh();
  return box;
}

export async function policiesPage(api) {
  if (!ui.policy && !ui.loading) {
    ui.loading = true;
    try {
      ui.collectors = await api.discover();
      ui.collector = ui.collector ?? ui.collectors[0] ?? null;
      ui.seen = null;
      ui.presets = null;
      if (ui.collector) ui.policy = await api.call(ui.collector, "policy");
      ui.error = null;
    } catch (e) {
      ui.error = e;
    } finally {
      ui.loading = false;
    }
  }
  render(api);
}

function render(api) {
  if (ui.loading) return show(el("p", {}, "Asking your collectors…"));
  if (!ui.collector) {
    return show(el("section", { class: "card" }, el("h2", {}, "Policies"),
      el("p", { class: "note", id: "no-collector" }, "No collector answered. Policies live in your collector: start one with your identity file, then come back."),
      el("button", { on: { click: () => { ui.policy = null; policiesPage(api); } } }, "Ask again")));
  }
  const tabs = el("div", { class: "filters", id: "policy-tabs" },
    ui.collectors.length > 1
      ? el("select", { id: "collector", on: { change: (e) => { ui.collector = e.target.value; ui.policy = null; policiesPage(api); } } },
          ui.collectors.map((c) => el("option", { value: c, selected: c === ui.collector }, c)))
      : el("span", { class: "note" }, `collector ${ui.collector}`),
    TABS.map(([id, label]) =>
      el("button", { id: `tab-${id}`, class: id === ui.tab ? "" : "plain", on: { click: () => { ui.tab = id; render(api); } } }, label)));
  const body = ui.error ? el("p", { class: "error" }, String(ui.error.message ?? ui.error)) : PAGES[ui.tab](api);
  show(el("section", { class: "card" }, el("h2", {}, "Policies"), tabs), body);
}

/** Sends one edit; on success re-renders with the new policy, else shows the problems in `out`. */
async function edit(api, change, out) {
  try {
    const r = await api.call(ui.collector, "edit", { edit: change });
    if (!r.applied) {
      out.replaceChildren(...r.errors.map((p) =>
        el("p", { class: "error", role: "alert" }, p.line ? `line ${p.line}: ${p.message}` : p.message)));
      return false;
    }
    ui.policy = r.policy;
    render(api);
    return true;
  } catch (e) {
    problem(out, e);
    return false;
  }
}

const sections = () => ui.policy?.sections ?? {};
const card = (title, ...children) => el("section", { class: "card" }, el("h2", {}, title), ...children);
const field = (id, placeholder, value = "") => el("input", { id, placeholder, value, autocomplete: "off", size: 40 });

/** Devices the collector saw and nobody authorized: tick some, authorize them at once. */
function seenDevices(api, alert, out) {
  const picks = [];
  const box = answered(api, "seen", "devices", (seen) => {
    picks.length = 0;
    const rows = seen.map((d) => {
      const tick = el("input", { type: "checkbox", "data-mac": d.mac });
      picks.push([tick, d.mac]);
      return el("tr", {}, el("td", {}, tick), el("td", {}, d.mac), el("td", {}, d.ip ?? ""), el("td", {}, d.instance),
        el("td", {}, new Date(d.last_seen_us / 1000).toISOString()));
    });
    return [rows.length
      ? el("table", { id: "seen-devices" }, el("tr", {}, ["", "MAC", "IP", "instance", "last seen"].map((h) => el("th", {}, h))), rows)
      : el("p", { class: "note" }, "No unauthorized device seen (device tracking must be on: authorize one device first).")];
  });
  const authorize = async () => {
    for (const [tick, mac] of picks) {
      if (tick.checked && !(await edit(api, { device_set: { mac, name: null, alert_on_disconnect: alert.checked } }, out))) return;
    }
    ui.seen = null;
    render(api);
  };
  return el("div", { id: "seen-devices-card" },
    el("h2", {}, "Seen, not authorized"),
    box,
    el("p", {}, el("button", { id: "authorize-seen", on: { click: authorize } }, "Authorize selected"), " ",
      el("button", { class: "plain", id: "refresh-seen", on: { click: () => box.refresh() } }, "Refresh")));
}

/** The built-in presets, for the types the policy does not override. */
function presets(api, overridden) {
  const list = (a) => (a === null ? "everything" : a.join(", "));
  return el("div", {},
    el("h2", {}, "Built-in presets (types without a row above)"),
    answered(api, "presets", "presets", (all) => [
      el("table", { id: "device-presets" },
        el("tr", {}, ["device type", "as client", "as server"].map((h) => el("th", {}, h))),
        all.filter((p) => !(p.type in overridden)).map((p) =>
          el("tr", {}, el("td", {}, p.type), el("td", {}, list(p.client)), el("td", {}, list(p.server))))),
    ]));
}

const PAGES = {
  acl(api) {
    const out = el("div", { id: "acl-errors" });
    const rule = field("acl-rule", "PROTO;SRC;DST;PORT or APP, e.g. TCP;*;*;443");
    let editing = null;
    const save = el("button", { id: "acl-add", on: { click: () => {
      const r = rule.value.trim();
      edit(api, editing ? { acl_edit: { id: editing, rule: r } } : { acl_add: r }, out);
    } } }, "Add rule");
    const rules = ui.policy.acl_rules;
    const text = el("textarea", { id: "acl-text", rows: 8, cols: 60 }, rules.join("\n"));
    const adv = el("div", { id: "acl-text-errors" });
    return el("div", {},
      card(`Access Control List ${ui.policy.acl_on ? "(on)" : "(off: add a rule to turn it on)"}`,
        el("p", { class: "note" }, "An allow-list: a flow matching no rule raises an acl_violation alert."),
        el("table", { id: "acl-rules" },
          el("tr", {}, el("th", {}, "#"), el("th", {}, "rule"), el("th", {}, "")),
          rules.map((r, i) => el("tr", { "data-rule": r },
            el("td", {}, i + 1), el("td", {}, r),
            el("td", {},
              el("button", { class: "plain", on: { click: () => { editing = i + 1; rule.value = r; save.textContent = `Save rule ${i + 1}`; rule.focus(); } } }, "Edit"),
              el("button", { class: "plain", "data-delete": i + 1, on: { click: () => edit(api, { acl_delete: i + 1 }, out) } }, "Delete"))))),
        el("p", {}, rule, " ", save, " ",
          el("button", { class: "plain", id: "acl-delete-all", on: { click: () => confirm("Delete every rule? Every flow will then alert.") && edit(api, "acl_delete_all", out) } }, "Delete all")),
        out),
      card("Advanced: one rule per line",
        text, el("p", {}, el("button", { id: "acl-save-text", on: { click: () => edit(api, { acl_import: { text: text.value, replace: true } }, adv) } }, "Replace the rules")),
        adv));
  },

  devices(api) {
    const d = sections().devices;
    const out = el("div", { id: "devices-errors" });
    const macs = el("textarea", { id: "device-macs", rows: 3, cols: 40, placeholder: "one MAC per line (several at once)" });
    const name = field("device-name", "name (optional)");
    const alert = el("input", { id: "device-alert", type: "checkbox" });
    const add = async () => {
      for (const mac of macs.value.split(/\s+/).filter(Boolean)) {
        if (!(await edit(api, { device_set: { mac, name: name.value || null, alert_on_disconnect: alert.checked } }, out))) return;
      }
    };
    return card(`Device/MAC tracking ${d ? "(on)" : "(off: authorize a device to turn it on)"}`,
      el("table", { id: "devices" },
        el("tr", {}, ["MAC", "name", "alert on disconnect", ""].map((h) => el("th", {}, h))),
        (d?.authorized ?? []).map((a) => el("tr", {},
          el("td", {}, a.mac), el("td", {}, a.name ?? ""), el("td", {}, a.alert_on_disconnect ? "yes" : "no"),
          el("td", {}, el("button", { class: "plain", on: { click: () => edit(api, { device_remove: a.mac }, out) } }, "Remove"))))),
      el("p", {}, macs), el("p", {}, name, " ", el("label", {}, alert, " alert on disconnect"), " ",
        el("button", { id: "device-add", on: { click: add } }, "Authorize")),
      out,
      seenDevices(api, alert, out));
  },

  apps(api) {
    const out = el("div", { id: "apps-errors" });
    const types = sections().device_apps ?? {};
    const t = field("apps-type", "device type, e.g. printer");
    const client = field("apps-client", "client apps, comma separated: DNS, NTP");
    const server = field("apps-server", "server apps: HTTP, TLS");
    const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
    return card("Allowed applications per device type",
      el("table", { id: "device-apps" },
        el("tr", {}, ["device type", "as client", "as server", ""].map((h) => el("th", {}, h))),
        Object.entries(types).map(([k, v]) => el("tr", {},
          el("td", {}, k), el("td", {}, (v.client ?? []).join(", ")), el("td", {}, (v.server ?? []).join(", ")),
          el("td", {}, el("button", { class: "plain", on: { click: () => edit(api, { device_apps_unset: k }, out) } }, "Back to the preset"))))),
      el("p", {}, t, " ", client, " ", server, " ",
        el("button", { id: "apps-set", on: { click: () => edit(api, { device_apps_set: { device_type: t.value.trim(), client: list(client.value), server: list(server.value) } }, out) } }, "Set")),
      out,
      presets(api, types));
  },

  hosts(api) {
    const out = el("div", { id: "hosts-errors" });
    const hp = sections().host_policy ?? {};
    const cidr = field("host-cidr", "IP or CIDR");
    const which = el("select", { id: "host-list" }, ["restricted", "core", "whitelisted"].map((l) => el("option", { value: l }, l)));
    return card("Host policy",
      el("table", { id: "host-policy" },
        el("tr", {}, ["list", "hosts", ""].map((h) => el("th", {}, h))),
        ["restricted", "core", "whitelisted"].flatMap((l) => (hp[l] ?? []).map((h) => el("tr", {},
          el("td", {}, l), el("td", {}, h),
          el("td", {}, el("button", { class: "plain", on: { click: () => edit(api, { host_remove: { list: l, cidr: h } }, out) } }, "Remove")))))),
      el("p", {}, which, " ", cidr, " ", el("button", { id: "host-add", on: { click: () => edit(api, { host_add: { list: which.value, cidr: cidr.value.trim() } }, out) } }, "Add")),
      el("p", { class: "note" }, "Restricted hosts may only talk to whitelisted ones; core hosts must not go silent."),
      out);
  },

  profiles(api) {
    const out = el("div", { id: "profiles-errors" });
    const name = field("profile-name", "name");
    const bpf = field("profile-bpf", "BPF, e.g. tcp port 80 or tcp port 443");
    return card("Traffic profiles",
      el("table", { id: "profiles" },
        el("tr", {}, ["name", "BPF", ""].map((h) => el("th", {}, h))),
        (sections().profile ?? []).map((p) => el("tr", {},
          el("td", {}, p.name), el("td", {}, p.bpf),
          el("td", {}, el("button", { class: "plain", on: { click: () => edit(api, { profile_remove: p.name }, out) } }, "Remove"))))),
      el("p", {}, name, " ", bpf, " ", el("button", { id: "profile-save", on: { click: () => edit(api, { profile_set: { name: name.value.trim(), bpf: bpf.value } }, out) } }, "Save (the BPF is checked)")),
      out);
  },

  rules(api) {
    const out = el("div", { id: "rules-errors" });
    const f = {
      target: field("rule-target", "target: host:IP, network:CIDR, profile:NAME, …"),
      metric: field("rule-metric", "metric: total or an application"),
      frequency: el("select", { id: "rule-frequency" }, ["5min", "hour", "day"].map((v) => el("option", { value: v }, v))),
      kind: el("select", { id: "rule-kind" }, ["volume", "throughput", "percentage"].map((v) => el("option", { value: v }, v))),
      bound: el("select", { id: "rule-bound" }, ["above", "below"].map((v) => el("option", { value: v }, v))),
      value: field("rule-value", "value: 1MB, 10Mbps, 50"),
    };
    const value = (x) => x.value.trim();
    return card("Traffic rules",
      el("table", { id: "traffic-rules" },
        el("tr", {}, ["#", "target", "metric", "frequency", "kind", "bound", "value", ""].map((h) => el("th", {}, h))),
        (sections().traffic_rule ?? []).map((r, i) => el("tr", {},
          el("td", {}, i + 1), ...["target", "metric", "frequency", "kind", "bound", "value"].map((k) => el("td", {}, r[k])),
          el("td", {}, el("button", { class: "plain", on: { click: () => edit(api, { traffic_rule_remove: i + 1 }, out) } }, "Remove"))))),
      el("p", {}, ...Object.values(f).flatMap((x) => [x, " "]),
        el("button", { id: "rule-add", on: { click: () => edit(api, { traffic_rule_add: Object.fromEntries(Object.entries(f).map(([k, x]) => [k, value(x)])) }, out) } }, "Add rule")),
      out);
  },

  file() {
    return card("Policy file (as the collector stores it)", el("pre", { class: "detail", id: "policy-toml" }, ui.policy.toml));
  },
};
