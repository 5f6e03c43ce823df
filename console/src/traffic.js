// The Traffic page: each instance's timeseries as the collector stores them (total, per
// protocol, application, local host, profile) at 5 min, hour or day, drawn as SVG here — the
// points come sealed from the collector (`series` request), nothing from any other server.

import { el, problem, show } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const RANGES = { "5m": 24 * 3600, "1h": 7 * 24 * 3600, "1d": 90 * 24 * 3600 };
const GROUPS = [
  ["l7", "Per protocol"],
  ["app", "Per application"],
  ["host", "Per local host"],
  ["profile", "Per profile"],
];
const ui = { instance: null, resolution: "5m", data: null, error: null, loading: false };

export const bytes = (n) => {
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  for (; n >= 1024 && i < u.length - 1; i++) n /= 1024;
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
};

export function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** Bytes per bucket as bars, with the peak and the time span labelled. */
function chart(points, from, to, step, { width = 900, height = 160, id } = {}) {
  const max = Math.max(1, ...points.map((p) => p.bytes));
  const n = Math.max(1, Math.round((to - from) / step));
  const bw = width / n;
  const bars = points
    .filter((p) => p.start >= from && p.start < to)
    .map((p) => {
      const h = Math.max(1, (p.bytes / max) * (height - 20));
      return svg("rect", { x: ((p.start - from) / step) * bw, y: height - h, width: Math.max(1, bw - 1), height: h, class: "bar" },
        svg("title", {}, `${new Date(p.start * 1000).toISOString()}: ${bytes(p.bytes)}, ${p.packets} packets`));
    });
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", height, class: "chart", ...(id ? { id } : {}) },
    svg("text", { x: 2, y: 12, class: "axis" }, `peak ${bytes(max)} per bucket`),
    svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: "axis-line" }),
    ...bars);
}

async function load(api, instances) {
  ui.loading = true;
  ui.error = null;
  try {
    ui.instance = ui.instance && instances.includes(ui.instance) ? ui.instance : instances[0] ?? null;
    if (!ui.instance) {
      ui.data = null;
      return;
    }
    const collectors = await api.discover();
    const to = Math.floor(Date.now() / 1000) + 1;
    const from = to - RANGES[ui.resolution];
    let data = null;
    for (const c of collectors) {
      const r = await api.call(c, "series", { instance: ui.instance, resolution: ui.resolution, from_s: from, to_s: to });
      if (r.count) {
        data = { ...r, collector: c, from, to };
        break;
      }
    }
    ui.data = data;
  } catch (e) {
    ui.error = e;
  } finally {
    ui.loading = false;
  }
}

export async function trafficPage(api, instances, redraw) {
  const step = { "5m": 300, "1h": 3600, "1d": 86400 }[ui.resolution];
  const pickInstance = el("select", { id: "traffic-instance", on: { change: async (e) => { ui.instance = e.target.value; await load(api, instances); redraw(); } } },
    instances.map((i) => el("option", { value: i, selected: i === ui.instance }, i)));
  const pickResolution = el("select", { id: "traffic-resolution", on: { change: async (e) => { ui.resolution = e.target.value; await load(api, instances); redraw(); } } },
    [["5m", "5 minutes (last day)"], ["1h", "hours (last week)"], ["1d", "days (last 90)"]].map(([v, l]) => el("option", { value: v, selected: v === ui.resolution }, l)));
  const head = el("section", { class: "card" }, el("h2", {}, "Traffic"),
    el("div", { class: "filters" }, el("label", {}, "instance ", pickInstance), el("label", {}, "resolution ", pickResolution),
      el("button", { id: "traffic-refresh", on: { click: async () => { await load(api, instances); redraw(); } } }, "Refresh")));
  if (ui.data === null && !ui.loading && !ui.error && instances.length) {
    await load(api, instances);
  }
  if (ui.error) {
    const out = el("div");
    problem(out, ui.error);
    return show(head, out);
  }
  const d = ui.data;
  if (!d) {
    return show(head, el("p", { class: "note", id: "no-traffic" }, "No timeseries for this instance yet: the collector stores them as flows arrive."));
  }
  const total = d.points.total ?? [];
  const sum = (ps) => ps.reduce((n, p) => n + p.bytes, 0);
  const cards = [
    el("section", { class: "card" }, el("h2", {}, `Total — ${bytes(sum(total))}`), chart(total, d.from, d.to, step, { id: "chart-total" })),
  ];
  for (const [prefix, title] of GROUPS) {
    const names = Object.keys(d.points).filter((n) => n.startsWith(`${prefix}:`));
    if (!names.length) continue;
    const ranked = names.map((n) => [n, sum(d.points[n])]).sort((a, b) => b[1] - a[1]);
    cards.push(el("section", { class: "card", id: `traffic-${prefix}` }, el("h2", {}, title),
      el("table", {},
        el("tr", {}, el("th", {}, prefix), el("th", {}, "bytes"), el("th", {}, "")),
        ranked.map(([n, b]) => el("tr", { "data-series": n },
          el("td", {}, n.slice(prefix.length + 1)), el("td", {}, bytes(b)),
          el("td", { class: "spark" }, chart(d.points[n], d.from, d.to, step, { width: 400, height: 40 })))))));
  }
  show(head, ...cards, el("p", { class: "note" }, `From ${d.collector}: ${d.count} series; shown: the total and the ten busiest of each kind.`));
}
