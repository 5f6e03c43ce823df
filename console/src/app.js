// The console's pages. Every value from the network is written with textContent (never as
// HTML), so nothing in an alert or a heartbeat can run as script.

import { Kvm } from "@nats-io/kv";
import { Collectors } from "./api.js";
import { el, problem, show } from "./dom.js";
import { hex, openerFor } from "./envelope.js";
import { instancesPage } from "./instances.js";
import { policiesPage } from "./policies.js";
import { trafficPage } from "./traffic.js";
import { flowsPage } from "./flows.js";
import { formatIdentity, generateIdentity, importIdentity, parseIdentity } from "./identity.js";
import { decodeStatus } from "./status.js";
import { signIn } from "./session.js";
import * as store from "./store.js";

const main = document.getElementById("main");
const state = { cfg: null, me: null, link: null, api: null, listeners: null, alerts: [], instances: new Map(), filter: {}, redraw: () => refresh() };
const MAX_ALERTS = 5000;

// ---- signed out ---------------------------------------------------------------------------

function welcome() {
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  const upError = el("div");
  const inError = el("div");
  const name = el("input", { id: "signup-name", placeholder: "user name (letters, digits, - _)", autocomplete: "off" });
  const file = el("input", { id: "identity-file", type: "file", accept: ".id,.toml,text/plain" });
  const up = el("section", { class: "card", id: "signup-card" },
    el("h2", {}, "Sign up"),
    el("p", { class: "note" }, "Your browser makes your key pair. Only the public key is sent; you download the identity file, which your sensors use too."),
    name, " ",
    el("button", { id: "signup", on: { click: () => signUp(name.value.trim(), upError).catch((e) => problem(upError, e)) } }, "Create my keys and sign up"),
    upError);
  const signin = el("section", { class: "card", id: "signin-card" },
    el("h2", {}, "Sign in"),
    el("p", { class: "note" }, "Import your identity file (from sign-up or flowmesh keygen). Its private key stays in this browser, unreadable even to this page."),
    file, " ",
    el("button", { id: "signin", on: { click: () => signInWithFile(file, inError).catch((e) => problem(inError, e)) } }, "Sign in"),
    inError);
  show(...(state.cfg?.signup ? [up, signin] : [signin]));
}

async function signUp(name, out) {
  if (!name) throw new Error("choose a user name");
  const id = await generateIdentity();
  const r = await fetch("/api/signup", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, public_key: hex(id.publicRaw) }),
  });
  const answer = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(answer.error);
  const blob = new Blob([formatIdentity(id.publicRaw, id.privateRaw)], { type: "text/plain" });
  const url = URL.createObjectURL(blob);
  const key = await importIdentity(id);
  id.privateRaw.fill(0);
  out.replaceChildren(
    el("p", {}, `Welcome, ${name}. Download your identity file now: it is your only key, the cloud does not have it.`),
    el("a", { id: "download-identity", href: url, download: `${name}.id` }, `Download ${name}.id`),
    " ",
    el("button", { id: "continue", on: { click: () => { URL.revokeObjectURL(url); begin({ publicHex: hex(id.publicRaw), key }).catch((e) => problem(out, e)); } } }, "Continue to the console"),
  );
}

async function signInWithFile(input, out) {
  const f = input.files?.[0];
  if (!f) throw new Error("choose your identity file");
  const parsed = parseIdentity(await f.text());
  const key = await importIdentity(parsed);
  parsed.privateRaw.fill(0);
  await begin({ publicHex: hex(parsed.publicRaw), key });
  void out;
}

// ---- signed in ----------------------------------------------------------------------------

async function begin(me) {
  state.me = me;
  const s = await signIn(state.cfg, me);
  await store.save(me);
  state.link = s;
  state.api = new Collectors(s.nc, me);
  document.getElementById("who").textContent = s.user;
  document.getElementById("who").title = `session ${s.session}`;
  document.getElementById("nav").hidden = false;
  const out = document.getElementById("signout");
  out.hidden = false;
  out.onclick = async () => {
    await state.link?.nc.close();
    await store.clear();
    location.hash = "";
    location.reload();
  };
  state.listeners = follow(s.nc);
  route();
  renewBefore(s.expires);
}

// Requests wait at most this long for their answer (api.js, control.js); an old connection
// stays open that long after a renewal so what was asked on it is still answered.
const ANSWER_GRACE_MS = 15_000;

// The broker credentials expire (console role, `session_secs`): a minute before, sign in
// again with the key kept in this browser and move to the new connection; what the pages
// hold (alerts, instances) stays. The old connection stops listening at once (no alert
// shown twice) and closes once its requests in flight have had their answers: closing it at
// once failed an action clicked in that moment with "connection closed".
function renewBefore(expires) {
  const renew = async () => {
    try {
      const fresh = await signIn(state.cfg, state.me);
      const old = state.link;
      const oldListeners = state.listeners;
      state.link = fresh;
      state.api = new Collectors(fresh.nc, state.me);
      document.getElementById("who").title = `session ${fresh.session}`;
      state.listeners = follow(fresh.nc);
      oldListeners?.stop();
      setTimeout(() => old.nc.close().catch(() => {}), ANSWER_GRACE_MS);
      renewBefore(fresh.expires);
    } catch (e) {
      console.warn(`renewing the session: ${e.message}; again in 30 s`);
      setTimeout(renew, 30_000);
    }
  };
  setTimeout(renew, Math.max(5_000, expires * 1000 - Date.now() - 60_000));
}

// Listens on `nc` for alerts, status changes and heartbeats; returns `{ stop }`, which ends
// the listening (the connection stays open for requests).
function follow(nc) {
  const opener = openerFor(state.me);
  const stoppers = [];
  let stopped = false;
  const listen = async (subject, handle) => {
    const sub = nc.subscribe(subject);
    stoppers.push(() => sub.unsubscribe());
    for await (const m of sub) {
      try {
        const o = await opener.open(m.data, m.subject);
        handle(o.payload, m.subject);
      } catch (e) {
        console.warn(`${m.subject}: ${e.message}`);
      }
    }
  };
  const td = new TextDecoder();
  listen("flowmesh.alerts.*", (p) => addAlert(JSON.parse(td.decode(p))));
  listen("flowmesh.changes.*", (p) => {
    const a = JSON.parse(td.decode(p));
    addAlert(a);
    if (a.status) instance(a.instance).status = a.status;
    refresh();
  });
  listen("flowmesh.status.*", (p) => {
    const s = decodeStatus(p);
    Object.assign(instance(s.instance), s, { heard: Date.now() });
    refresh();
  });
  statusBucket(nc, opener, stoppers, () => stopped);
  (async () => {
    const link = document.getElementById("link");
    // The node it measured nearest (the client tries the nodes in that order).
    const via = state.link.nearest ? ` · nearest: ${state.link.nearest.node} (${state.link.nearest.region})` : "";
    link.textContent = `connected${via}`;
    link.className = "link up";
    for await (const s of nc.status()) {
      if (stopped) return;
      const up = s.type === "reconnect" || s.type === "update";
      if (s.type === "disconnect" || s.type === "reconnect") {
        link.textContent = up ? `connected${via}` : "reconnecting…";
        link.className = `link ${up ? "up" : "down"}`;
      }
    }
  })();
  return {
    stop() {
      stopped = true;
      for (const stop of stoppers) stop();
    },
  };
}

// Every instance's last known status, from the collectors' status bucket (sealed values), then
// each change as it is written. The bucket exists once a collector ran: until then, look again.
async function statusBucket(nc, opener, stoppers, stopped) {
  const td = new TextDecoder();
  while (!stopped()) {
    try {
      const kv = await new Kvm(nc).open("status");
      const watch = await kv.watch();
      stoppers.push(() => watch.stop());
      if (stopped()) watch.stop();
      for await (const e of watch) {
        if (e.operation !== "PUT") continue;
        try {
          const o = await opener.open(e.value, `$KV.status.${e.key}`, undefined, { stored: true });
          const a = JSON.parse(td.decode(o.payload));
          Object.assign(instance(a.instance ?? e.key), { status: a.status, since: a.time });
          refresh();
        } catch (err) {
          console.warn(`status bucket ${e.key}: ${err.message}`);
        }
      }
      return;
    } catch (err) {
      if (nc.isClosed() || stopped()) return;
      console.warn(`status bucket: ${err.message}; again in 5 s`);
      await new Promise((ok) => setTimeout(ok, 5000));
    }
  }
}

function instance(name) {
  if (!state.instances.has(name)) state.instances.set(name, { instance: name });
  return state.instances.get(name);
}

function addAlert(a) {
  state.alerts.unshift(a);
  if (state.alerts.length > MAX_ALERTS) state.alerts.length = MAX_ALERTS;
  if (a.instance) instance(a.instance);
  refresh();
}

// ---- pages --------------------------------------------------------------------------------

const PAGES = {
  instances: () => instancesPage(state),
  alerts: () => alertsPage(),
  policies: () => policiesPage(state.api),
  traffic: () => trafficPage(state.api, [...state.instances.keys()].sort(), () => route()),
  flows: () => flowsPage(state.api, [...state.instances.keys()].sort(), () => route()),
};

function route() {
  const page = PAGES[location.hash.slice(1)] ? location.hash.slice(1) : "instances";
  for (const p of Object.keys(PAGES)) {
    document.getElementById(`nav-${p}`).className = p === page ? "active" : "";
  }
  PAGES[page]();
}

let refreshQueued = false;
function refresh() {
  // Live data redraws the live pages only: a form being filled in must not be reset.
  if (refreshQueued || !state.link || ["#policies", "#traffic", "#flows"].includes(location.hash)) return;
  refreshQueued = true;
  requestAnimationFrame(() => {
    refreshQueued = false;
    route();
  });
}

function alertsPage() {
  const f = state.filter;
  const types = [...new Set(state.alerts.map((a) => a.type))].sort();
  const insts = [...new Set(state.alerts.map((a) => a.instance))].sort();
  const pick = (id, label, values, key) =>
    el("label", {}, `${label} `,
      el("select", { id, on: { change: (e) => { f[key] = e.target.value || undefined; route(); } } },
        el("option", { value: "" }, "all"),
        values.map((v) => el("option", v === f[key] ? { value: v, selected: "" } : { value: v }, v))));
  const inRange = (a) => (!f.from || a.time >= f.from) && (!f.to || a.time < f.to);
  const shown = state.alerts.filter((a) => (!f.type || a.type === f.type) && (!f.instance || a.instance === f.instance) && inRange(a));
  const when = (id, label, key) =>
    el("label", {}, `${label} `, el("input", { id, type: "datetime-local", value: f[`${key}Local`] ?? "",
      on: { change: (e) => { f[`${key}Local`] = e.target.value; f[key] = e.target.value ? new Date(e.target.value).toISOString() : undefined; route(); } } }));
  const status = el("span", { class: "note", id: "history-status" });
  const history = el("button", { id: "load-history", on: { click: () => loadHistory(status).catch((e) => problem(status, e)) } }, "Load history from the collectors");
  const detail = el("pre", { class: "detail", id: "alert-detail" }, "Click an alert to see it whole, with its flow.");
  show(
    el("section", { class: "card" },
      el("h2", {}, `Alerts (${shown.length} shown, ${state.alerts.length} in all)`),
      el("div", { class: "filters" }, pick("filter-type", "type", types, "type"), pick("filter-instance", "instance", insts, "instance"),
        when("filter-from", "from", "from"), when("filter-to", "to", "to"), history, status),
      el("table", { id: "alerts" },
        el("tr", {}, ...["time", "type", "severity", "instance", "flow"].map((h) => el("th", {}, h))),
        shown.slice(0, 500).map((a) =>
          el("tr", {
            class: "alert",
            // What the browser test reads to tell flows apart.
            "data-type": a.type,
            "data-instance": a.instance,
            "data-client": a.flow?.client_ip,
            "data-key": a.flow ? `${a.flow.client_ip}>${a.flow.server_ip}:${a.flow.server_port}` : undefined,
            "data-first-seen": a.flow?.first_seen,
            on: { click: () => { detail.textContent = JSON.stringify(a, null, 2); } },
          },
            el("td", {}, a.time ?? ""),
            el("td", {}, a.type ?? ""),
            el("td", {}, a.severity ?? ""),
            el("td", {}, a.instance ?? ""),
            el("td", {}, a.flow ? `${a.flow.client_ip}:${a.flow.client_port} → ${a.flow.server_ip}:${a.flow.server_port} ${a.flow.l7 ?? ""}` : ""),
          ))),
    ),
    el("section", { class: "card" }, el("h2", {}, "Detail"), detail),
  );
}

// Stored alerts from every collector (the newest 500 each within the filters), merged with
// the live ones; duplicates (the same alert live and stored) are shown once.
async function loadHistory(status) {
  status.textContent = "asking…";
  const f = state.filter;
  const micros = (iso) => (iso ? Date.parse(iso) * 1000 : undefined);
  const collectors = await state.api.discover();
  let got = 0;
  for (const c of collectors) {
    const stored = await state.api.call(c, "alerts", { type: f.type, instance: f.instance, from_us: micros(f.from), to_us: micros(f.to), limit: 500 });
    got += stored.length;
    state.alerts.push(...stored);
  }
  const seen = new Set();
  state.alerts = state.alerts
    .filter((a) => { const k = JSON.stringify(a); return !seen.has(k) && seen.add(k); })
    .sort((a, b) => (a.time < b.time ? 1 : -1));
  status.textContent = `${got} stored alerts from ${collectors.length} collector(s)`;
  refresh();
}

// ---- start --------------------------------------------------------------------------------

export async function start() {
  window.addEventListener("hashchange", () => state.link && route());
  try {
    state.cfg = await (await fetch("/api/config")).json();
  } catch (e) {
    problem(main, new Error(`the manager did not answer: ${e.message}`));
    return;
  }
  const me = await store.load().catch(() => undefined);
  if (me) {
    try {
      await begin(me);
      return;
    } catch (e) {
      welcome();
      problem(document.getElementById("signin-card").lastChild, e);
      return;
    }
  }
  welcome();
}
