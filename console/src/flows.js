// The Flows page (ntopng's Flows page, for the whole fleet): the flows every collector keeps,
// searched by instance, time, host, port, protocol, application, profile and server name,
// newest first with their profiles as badges, and the top hosts, applications, protocols and
// profiles of the same search as bar charts. Everything comes sealed from the collectors
// (`flows` request); nothing from any other server.

import { el, problem, show } from "./dom.js";
import { bytes, svg } from "./traffic.js";

const SPANS = [["1h", 3600], ["6h", 6 * 3600], ["24h", 86400], ["7d", 7 * 86400]];
const TOPS = [["apps", "Top applications"], ["hosts", "Top hosts"], ["l7", "Top protocols"], ["profiles", "Top profiles"]];
const SHOWN = 200;
const ui = {
  filter: { instance: "", span: "1h", host: "", port: "", l7: "", app: "", profile: "", server_name: "" },
  flows: null, top: {}, error: null, collectors: [],
};

function search(f) {
  const to = Date.now() * 1000;
  const span = SPANS.find(([k]) => k === f.span)?.[1] ?? 3600;
  const s = { from_us: to - span * 1_000_000, to_us: to + 1 };
  for (const k of ["instance", "host", "l7", "app", "profile", "server_name"]) if (f[k].trim()) s[k] = f[k].trim();
  if (f.port.trim()) {
    const p = Number(f.port);
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error("port: a number 0-65535");
    s.port = p;
  }
  return s;
}

async function load(api) {
  ui.error = null;
  try {
    const s = search(ui.filter);
    ui.collectors = await api.discover();
    const flows = [];
    const top = {};
    for (const c of ui.collectors) {
      const r = await api.call(c, "flows", { search: { ...s, limit: SHOWN } });
      flows.push(...r.flows);
      for (const [kind] of TOPS) {
        const t = await api.call(c, "flows", { search: { ...s, top: kind, limit: 10 } });
        for (const e of t.top) {
          const sum = (top[kind] ??= new Map()).get(e.key) ?? { key: e.key, flows: 0, bytes: 0 };
          sum.flows += e.flows;
          sum.bytes += e.bytes;
          top[kind].set(e.key, sum);
        }
      }
    }
    flows.sort((a, b) => (a.last_seen < b.last_seen ? 1 : a.last_seen > b.last_seen ? -1 : 0));
    ui.flows = flows.slice(0, SHOWN);
    ui.top = Object.fromEntries(Object.entries(top).map(([k, m]) => [k, [...m.values()].sort((a, b) => b.bytes - a.bytes).slice(0, 10)]));
  } catch (e) {
    ui.error = e;
  }
}

/** Horizontal bars, one per key, longest first. */
function bars(entries, id) {
  const max = Math.max(1, ...entries.map((e) => e.bytes));
  return el("table", { id, class: "bars" }, entries.map((e) => el("tr", { "data-key": e.key },
    el("td", {}, e.key),
    // An SVG bar: its width is an attribute (the console's CSP allows no inline styles).
    el("td", { class: "bar-cell" }, svg("svg", { width: "100%", height: 12, class: "hbar" },
      svg("rect", { width: `${Math.max(0.5, (100 * e.bytes) / max).toFixed(1)}%`, height: 12, rx: 2 }))),
    el("td", {}, bytes(e.bytes)),
    el("td", { class: "note" }, e.flows === 1 ? "1 flow" : `${e.flows} flows`))));
}

const endpoint = (ip, port) => (String(ip).includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);

function table(flows) {
  return el("table", { id: "flows-table" },
    el("tr", {}, ["last seen", "instance", "proto", "client", "server", "l7", "app", "server name", "bytes", "profiles"].map((h) => el("th", {}, h))),
    flows.map((f) => el("tr", { "data-l7": f.l7, "data-client": f.client_ip },
      el("td", {}, f.last_seen.replace("T", " ").slice(0, 19)),
      el("td", {}, f.instance),
      el("td", {}, f.l4),
      el("td", {}, endpoint(f.client_ip, f.client_port)),
      el("td", {}, endpoint(f.server_ip, f.server_port)),
      el("td", {}, f.l7),
      el("td", {}, f.app ?? ""),
      el("td", {}, f.server_name ?? ""),
      el("td", {}, bytes(f.c2s_bytes + f.s2c_bytes)),
      el("td", {}, (f.profiles ?? []).map((p) => el("span", { class: "badge" }, p))))));
}

export async function flowsPage(api, instances, redraw) {
  const f = ui.filter;
  const input = (k, placeholder, size = 14) =>
    el("input", { id: `flows-${k.replace("_", "-")}`, value: f[k], placeholder, size, on: { input: (e) => { f[k] = e.target.value; } } });
  const go = async () => { await load(api); redraw(); };
  const pickInstance = el("select", { id: "flows-instance", on: { change: (e) => { f.instance = e.target.value; } } },
    el("option", { value: "" }, "all instances"),
    instances.map((i) => el("option", { value: i, selected: i === f.instance }, i)));
  const pickSpan = el("select", { id: "flows-span", on: { change: (e) => { f.span = e.target.value; } } },
    SPANS.map(([k]) => el("option", { value: k, selected: k === f.span }, `last ${k}`)));
  const head = el("section", { class: "card" }, el("h2", {}, "Flows"),
    el("div", { class: "filters" }, pickInstance, pickSpan, input("host", "host IP or CIDR"), input("port", "port", 6),
      input("l7", "protocol (TLS)", 12), input("app", "application", 12), input("profile", "profile", 10),
      input("server_name", "server name (example.com)", 20),
      el("button", { id: "flows-search", on: { click: go } }, "Search")));
  if (ui.flows === null && !ui.error) await load(api);
  if (ui.error) {
    const out = el("div");
    problem(out, ui.error);
    return show(head, out);
  }
  const tops = el("div", { class: "tops" }, TOPS.filter(([k]) => ui.top[k]?.length).map(([k, title]) =>
    el("section", { class: "card top", id: `flows-top-${k}` }, el("h2", {}, title), bars(ui.top[k], `top-${k}`))));
  const list = ui.flows.length
    ? el("section", { class: "card" }, el("h2", {}, `${ui.flows.length} newest flows`), table(ui.flows))
    : el("p", { class: "note", id: "no-flows" }, "No stored flow matches: widen the time span or clear a filter.");
  show(head, tops, list, el("p", { class: "note" }, `From ${ui.collectors.join(", ") || "no collector"}; at most ${SHOWN} flows shown, newest first.`));
}
