// The Instances page: every instance with its live status and last heartbeat, where it is
// connected (region, node: the manager's registry), and what can be done to it — remote
// actions, revoke, remote assistance — plus Add instance, which makes credentials in the browser (its nkey) and
// shows a ready config to copy, with the command that starts it.

import { nkeys } from "@nats-io/nats-core";
import { remoteAction } from "./control.js";
import { el, problem, show } from "./dom.js";
import { managerCall } from "./session.js";

const count = (v) => (v === undefined ? "—" : Number(v).toLocaleString("en"));
const ago = (ms) => (ms ? `${Math.max(0, Math.round((Date.now() - ms) / 1000))} s ago` : "—");

let ctx = null; // the app's state: cfg, me, link, instances
const where = new Map(); // instance -> the registry's { role, online, region, node }
let asked = 0;

// Built once and kept across redraws (heartbeats redraw the table every second): a form being
// filled in, or an answer being read, is not reset.
const actionOut = el("pre", { class: "detail", id: "action-result" }, "Actions answer here.");
const addOut = el("div", { id: "add-result" });
const addName = el("input", { id: "add-name", placeholder: "instance name, e.g. branch-sensor", autocomplete: "off" });
const addRole = el("select", { id: "add-role" }, ["sensor", "collector", "watch"].map((r) => el("option", { value: r }, r)));
const addCard = el("section", { class: "card" },
  el("h2", {}, "Add instance"),
  el("p", { class: "note" }, "Credentials for a new sensor, collector or watch client. Its key is made here, in your browser; the cloud signs it and never sees the secret half."),
  el("p", {}, addName, " ", addRole, " ", el("button", { id: "add-instance", on: { click: () => add().catch((e) => problem(addOut, e)) } }, "Create credentials")),
  addOut);

// Remote assistance: a session on one collector, whose key a support engineer uses with
// `flowmesh assist connect` to reach that collector's API (and nothing else) until it ends.
const assistOut = el("pre", { class: "detail", id: "assist-result" }, "No session asked for yet.");
const assistName = el("input", { id: "assist-instance", placeholder: "collector name", autocomplete: "off" });
const assistAdmin = el("input", { type: "checkbox", id: "assist-admin" });
const assistTtl = el("select", { id: "assist-ttl" },
  [["1 hour", 3600], ["4 hours", 14400], ["24 hours", 86400]].map(([l, v]) => el("option", { value: v }, l)));
const assistCard = el("section", { class: "card" },
  el("h2", {}, "Remote assistance"),
  el("p", { class: "note" }, "Let a support engineer reach one collector's API through the cloud, for at most a day. " +
    "Hand the key over by a secure channel: whoever holds it runs `flowmesh assist connect KEY`. " +
    "The session ends by itself, or when you disable it; the collector raises remote_assistance alerts."),
  el("p", {}, assistName, " ", el("label", {}, assistAdmin, " as admin"), " ", assistTtl, " ",
    el("button", { id: "assist-enable", on: { click: () => assist("assist_enable") } }, "Enable"), " ",
    el("button", { class: "plain", id: "assist-status", on: { click: () => assist("assist_status") } }, "Status"), " ",
    el("button", { class: "plain", id: "assist-disable", on: { click: () => assist("assist_disable") } }, "Disable")),
  assistOut);

async function assist(action) {
  const instance = assistName.value.trim();
  if (!instance) {
    assistOut.textContent = "Name the collector to assist.";
    return;
  }
  const args = action === "assist_enable"
    ? JSON.stringify({ admin: assistAdmin.checked, ttl_secs: Number(assistTtl.value) })
    : "";
  assistOut.textContent = `${instance}: ${action}…`;
  try {
    const r = await remoteAction(ctx.link.nc, ctx.me, instance, action, args);
    if (!r.ok) {
      assistOut.textContent = `${instance}: ${action} refused: ${r.error}`;
      return;
    }
    const v = JSON.parse(r.json);
    if (action === "assist_enable") {
      assistOut.textContent = `${instance}: session ${v.session} until ${v.expires}${v.admin ? " (as admin)" : ""}.
` +
        `Hand this key over by a secure channel; it works until the session ends:

${v.key}`;
    } else if (action === "assist_disable") {
      assistOut.textContent = v.ended ? `${instance}: session ${v.session} ended` : `${instance}: no session was active`;
    } else {
      assistOut.textContent = `${instance}: ${JSON.stringify(v, null, 2)}`;
    }
  } catch (e) {
    assistOut.textContent = `${instance}: ${action} failed: ${e.message}`;
  }
}

async function askWhere() {
  asked = Date.now();
  try {
    const list = await managerCall(ctx.cfg, ctx.me, { op: "instances" });
    where.clear();
    for (const i of list) where.set(i.instance, i);
    ctx.redraw();
  } catch (e) {
    console.warn(`registry: ${e.message}`);
  }
}

function download(name, text, id) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  return el("a", { id, href: url, download: name }, `Download ${name}`);
}

function configFor(a, user) {
  const urls = a.nodes.map((n) => `"${n.url}"`).join(", ");
  const broker = `[broker]\nurls = [${urls}]\nca_file = "ca.pem"\ncreds_file = "${a.instance}.creds"\n`;
  const identity = `identity = "${user}.id"        # your identity file, from sign-up (mode 0600)\n`;
  if (a.role === "sensor") {
    return `name = "${a.instance}"\n${identity}state_dir = "${a.instance}-state"\n${broker}\n[capture]\ninterface = "eth0"             # or: file = "traffic.pcap"\n`;
  }
  if (a.role === "collector") {
    return `name = "${a.instance}"\n${identity}store = "${a.instance}.redb"\npolicy = "policy.toml"\n${broker}`;
  }
  return identity + broker;
}

async function add() {
  const instance = addName.value.trim();
  const role = addRole.value;
  if (!instance) throw new Error("give the instance a name");
  const kp = nkeys.createUser();
  const seed = new TextDecoder().decode(kp.getSeed());
  const a = await managerCall(ctx.cfg, ctx.me, { op: "add_instance", instance, role, user_nkey: kp.getPublicKey() });
  const creds =
    `-----BEGIN NATS USER JWT-----\n${a.jwt}\n------END NATS USER JWT------\n\n` +
    "************************* IMPORTANT *************************\n" +
    "NKEY Seed printed below can be used to sign and prove identity.\n" +
    "NKEYs are sensitive and should be treated as secrets.\n\n" +
    `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n\n` +
    "*************************************************************\n";
  const config = configFor(a, ctx.link.user);
  const command = `flowmesh ${a.role === "watch" ? "watch" : a.role} --config ${a.instance}.toml`;
  addOut.replaceChildren(
    el("p", {}, `${a.instance} (${a.role}) can log in now. Put these files beside your identity file, then start it:`),
    el("pre", { class: "detail", id: "add-command" }, command),
    el("pre", { class: "detail", id: "add-config" }, config),
    el("p", {}, download(`${a.instance}.toml`, config, "download-config"), " · ",
      download(`${a.instance}.creds`, creds, "download-creds"), " (secret: mode 0600) · ",
      download("ca.pem", a.ca_pem, "download-ca")),
  );
  askWhere();
}

async function act(instance, action, args = "") {
  actionOut.textContent = `${instance}: ${action}…`;
  try {
    const r = await remoteAction(ctx.link.nc, ctx.me, instance, action, args);
    actionOut.textContent = r.ok
      ? `${instance}: ${action} done${r.json ? `\n${JSON.stringify(JSON.parse(r.json), null, 2)}` : ""}`
      : `${instance}: ${action} refused: ${r.error}`;
  } catch (e) {
    actionOut.textContent = `${instance}: ${action} failed: ${e.message}`;
  }
}

// Asks for the version (empty: the newest signed release for the instance's platform); the
// instance verifies, installs, restarts into it, and rolls back by itself if it does not come up.
// Its new version shows in the table at its next heartbeat.
function update(instance, running) {
  const version = prompt(`Update ${instance} (running ${running ?? "?"}) to which version? Empty: the newest signed release. It verifies the release, installs it and restarts; a release that does not come up is rolled back.`, "");
  if (version === null) return;
  const args = JSON.stringify(version.trim() ? { version: version.trim() } : {});
  act(instance, "update", args);
}

async function revoke(instance) {
  if (!confirm(`Revoke ${instance}? Its connections close and its credentials stop working.`)) return;
  try {
    const r = await managerCall(ctx.cfg, ctx.me, { op: "revoke", instance });
    // Which brokers stored the revocation; one that was down refuses the instance once back.
    const where = r.missing?.length ? `; ${r.pushed}: they refuse it when they are back` : ` (${r.pushed})`;
    actionOut.textContent = `${instance}: revoked${where}`;
  } catch (e) {
    actionOut.textContent = `${instance}: not revoked: ${e.message}`;
  }
  askWhere();
}

export function instancesPage(state) {
  ctx = state;
  if (Date.now() - asked > 10_000) askWhere();
  for (const name of where.keys()) if (!state.instances.has(name)) state.instances.set(name, { instance: name });
  const rows = [...state.instances.values()].sort((a, b) => a.instance.localeCompare(b.instance));
  const button = (label, f) => el("button", { class: "plain", on: { click: f } }, label);
  const headers = ["instance", "status", "region", "node", "version", "uptime", "captured", "dropped", "flows published", "outbox", "last heartbeat", "actions"];
  show(
    el("section", { class: "card" },
      el("h2", {}, "Instances"),
      rows.length === 0
        ? el("p", { class: "note", id: "no-instances" }, "No instance yet. Add one below, or start a sensor with your identity file: it appears here at its first heartbeat.")
        : el("table", { id: "instances" },
            el("tr", {}, headers.map((h) => el("th", {}, h))),
            rows.map((i) => {
              const w = where.get(i.instance) ?? {};
              const role = w.role ?? (i.packets_captured !== undefined ? "sensor" : "");
              return el("tr", { "data-instance": i.instance },
                el("td", {}, i.instance),
                el("td", { class: `status-${i.status ?? "unknown"}` }, i.status ?? (w.online ? "connected" : "—")),
                el("td", {}, w.region || "—"),
                el("td", {}, w.node || "—"),
                el("td", {}, i.version ?? "—"),
                el("td", {}, i.uptime_s === undefined ? "—" : `${i.uptime_s} s`),
                el("td", {}, count(i.packets_captured)),
                el("td", {}, count(i.packets_dropped)),
                el("td", {}, count(i.flows_published)),
                el("td", {}, count(i.outbox_depth)),
                el("td", {}, ago(i.heard)),
                el("td", { class: "actions" },
                  role === "sensor" || role === "collector"
                    ? button("Restart", () => { if (confirm(`Restart ${i.instance}? It stops cleanly and starts again.`)) act(i.instance, "restart"); })
                    : "",
                  role === "sensor" || role === "collector"
                    ? button("Update", () => update(i.instance, i.version))
                    : "",
                  role === "sensor" ? button("Restart capture", () => act(i.instance, "restart_capture")) : "",
                  role === "collector" ? button("Reload policy", () => act(i.instance, "reload_policy")) : "",
                  role === "collector" ? button("Assist…", () => { assistName.value = i.instance; assistName.scrollIntoView(); }) : "",
                  button("Report config", () => act(i.instance, "report_config")),
                  button("Revoke", () => revoke(i.instance))));
            })),
      actionOut),
    assistCard,
    addCard,
  );
}
