// node test/e2e.mjs CONSOLE_URL OUT_DIR
//
// Drives the web console in headless Debian Chromium as a new user would, in step with the
// Rust test that runs the cluster, the manager, a collector and a sensor
// (tests/console_browser.rs). Lines on stdout tell the test where it is; lines on stdin say
// when to go on:
//   -> IDENTITY <path>   signed up, identity file downloaded, three instances added in the
//                        page (their .creds, .toml, ca.pem downloaded)  <- GO (sensor, collector up)
//   -> EDITED            sensor online, a live alert opened, an ACL rule added in the
//                        Policies page                           <- GO2 (a second sensor up)
//   -> LIVE              the second sensor's flows alert, except the allowed client's; remote
//                        actions answered; eu-sensor-2 revoked  <- STOPPED (sensors stopped)
//   -> RESULT <json>     saw it offline; signed in again on a fresh profile with the file
// Screenshots of each page go to OUT_DIR. Every request the browser sent is kept and searched
// for the private key (hex, base64 and raw). Exits 1 on failure, 2 if the browser can't start.

import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { launch } from "./browser.mjs";

const [url, out] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin });
const nextLine = (() => {
  const queue = [];
  const waiting = [];
  lines.on("line", (l) => (waiting.length ? waiting.shift()(l) : queue.push(l)));
  return () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((ok) => waiting.push(ok)));
})();
const expect = async (word) => {
  const l = await nextLine();
  if (l.trim() !== word) throw new Error(`expected ${word} from the test, got ${l}`);
};
const say = (l) => console.log(l);
const step = (l) => console.error(`e2e: ${l}`);

const browser = await launch();

const sent = [];
async function context() {
  const c = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 800 } });
  c.on("request", (r) => sent.push({ url: r.url(), body: r.postDataBuffer() ?? Buffer.alloc(0) }));
  return c;
}
const shot = (page, name) => page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
let current = null; // the page in use, for a screenshot when something fails

try {
  // Sign up: the browser makes the keys, the file is downloaded.
  const a = await context();
  const page = await a.newPage();
  current = page;
  page.on("console", (m) => console.error(`browser: ${m.text()}`));
  await page.goto(url);
  await page.fill("#signup-name", "carol");
  await shot(page, "01-signup");
  await page.click("#signup");
  await page.waitForSelector("#download-identity", { timeout: 30_000 });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-identity")]);
  const identity = join(out, "carol.id");
  await download.saveAs(identity);
  await shot(page, "02-identity");
  await page.click("#continue");
  await page.waitForSelector("#nav:not([hidden])", { timeout: 30_000 });
  step("signed up and in");
  const firstSession = await page.getAttribute("#who", "title");
  // Add instance: credentials made in the browser, a ready config, the files downloaded.
  for (const [name, role] of [["eu-sensor", "sensor"], ["eu-sensor-2", "sensor"], ["eu-collector", "collector"]]) {
    await page.fill("#add-name", name);
    await page.selectOption("#add-role", role);
    await page.click("#add-instance");
    await page.waitForSelector(`#add-result #download-creds[download="${name}.creds"]`, { timeout: 30_000 });
    for (const id of ["download-creds", "download-config", "download-ca"]) {
      const [d] = await Promise.all([page.waitForEvent("download"), page.click(`#${id}`)]);
      await d.saveAs(join(out, d.suggestedFilename()));
    }
    step(`added ${name} (${role})`);
  }
  await shot(page, "03-add-instance");
  say(`IDENTITY ${identity}`);
  await expect("GO");

  // A sensor started with the downloaded identity: online at its first heartbeat.
  await page.waitForSelector('#instances tr[data-instance="eu-sensor"] td.status-online', { timeout: 90_000 });
  await shot(page, "04-instances");
  step("sensor online");
  await page.click("#nav-alerts");
  // A flow alert (the collector's ACL), not only the status change.
  const acl = '#alerts tr.alert:has-text("acl_violation")';
  await page.waitForSelector(acl, { timeout: 90_000 });
  await page.click(acl);
  const detail = await page.textContent("#alert-detail");
  if (!detail.includes('"acl_violation"') || !detail.includes('"flow"')) throw new Error(`alert detail: ${detail}`);
  await shot(page, "05-alerts");
  step("alert live");

  // Policies: a rule the collector refuses shows `policy validate`'s problem next to the form;
  // a rule allowing one client's HTTP: a second sensor then replays the same capture (every
  // flow new to it), and all its flows alert again except that client's.
  await page.selectOption("#filter-type", "acl_violation");
  const rows = () =>
    page.$$eval("#alerts tr.alert[data-key]", (trs) =>
      trs.map((t) => ({ key: t.dataset.key, client: t.dataset.client, instance: t.dataset.instance })));
  // Ten flows alerted (or more) before the edit: the second sensor must alert them all again.
  await page.waitForFunction(() => document.querySelectorAll("#alerts tr.alert[data-key]").length >= 10, null, { timeout: 90_000 });
  const before = await rows();
  // The client of the first flow that alerted: it ends first in the capture, so on the
  // second sensor it is judged before the others (see below).
  const allowed = before[before.length - 1].client;
  const others = [...new Set(before.map((r) => r.key))].filter((k) => !k.startsWith(`${allowed}>`));
  await page.click("#nav-policies");
  await page.waitForSelector("#acl-rules", { timeout: 30_000 });
  await page.fill("#acl-rule", "TCP;*;*;eighty");
  await page.click("#acl-add");
  await page.waitForSelector("#acl-errors .error", { timeout: 30_000 });
  const refusal = await page.textContent("#acl-errors");
  const rule = `TCP;${allowed};*;80`;
  await page.fill("#acl-rule", rule);
  await page.click("#acl-add");
  await page.waitForSelector(`#acl-rules tr[data-rule="${rule}"]`, { timeout: 30_000 });
  await shot(page, "06-policies-acl");
  step(`refused with "${refusal.trim()}"; then allowed ${rule}`);
  say("EDITED");
  await expect("GO2");
  await page.click("#nav-alerts");
  await page.selectOption("#filter-type", "acl_violation");
  for (const deadline = Date.now() + 120_000; ; ) {
    const second = (await rows()).filter((r) => r.instance === "eu-sensor-2");
    const again = new Set(second.map((r) => r.key));
    // Every other flow alerted on the second sensor: the allowed client's, which ended before
    // them, has been judged too — and must not have alerted.
    if (others.every((k) => again.has(k))) {
      const leaked = second.filter((r) => r.client === allowed);
      if (leaked.length) throw new Error(`${allowed} still alerts after ${rule}: ${JSON.stringify(leaked)}`);
      break;
    }
    if (Date.now() > deadline) throw new Error(`the second sensor's flows did not all alert within 120 s`);
    await page.waitForTimeout(250);
  }
  step(`${others.length} other flows alerted again, ${allowed} did not`);
  // Traffic: the collector's timeseries of eu-sensor, drawn in the page.
  await page.click("#nav-traffic");
  await page.waitForSelector("#traffic-instance", { timeout: 30_000 });
  await page.selectOption("#traffic-instance", "eu-sensor");
  await page.waitForSelector("#chart-total rect.bar", { timeout: 60_000 });
  await page.waitForSelector('#traffic-l7 tr[data-series="l7:HTTP"]', { timeout: 30_000 });
  await shot(page, "07-traffic");
  step("traffic charts drawn");
  // Flows: the collector's flow store, searched from the page.
  await page.click("#nav-flows");
  await page.waitForSelector('#flows-table tr[data-l7="HTTP"]', { timeout: 30_000 });
  await page.waitForSelector('#top-apps tr', { timeout: 30_000 });
  await page.fill("#flows-l7", "DNS");
  await page.selectOption("#flows-instance", "eu-sensor");
  await page.click("#flows-search");
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#flows-table tr[data-l7]")];
    return rows.length > 0 && rows.every((r) => r.dataset.l7 === "DNS" && r.querySelector(".badge")?.textContent === "dns");
  }, null, { timeout: 30_000 });
  await shot(page, "08-flows");
  step("flows searched (HTTP shown, then DNS only, each with its profile badge)");

  // Device tracking: several MACs authorized at once (tracking turns on), then a device the
  // collector saw, picked from its list and authorized; the presets of the apps page.
  await page.click("#nav-policies");
  await page.click("#tab-devices");
  await page.fill("#device-macs", "02:00:00:00:00:0a\n02:00:00:00:00:ff");
  await page.click("#device-add");
  await page.waitForSelector('#devices td:text-is("02:00:00:00:00:ff")', { timeout: 30_000 });
  const seen = '#seen-devices input[data-mac="02:00:00:00:00:0b"]';
  for (const deadline = Date.now() + 60_000; !(await page.$(seen)); ) {
    if (Date.now() > deadline) throw new Error("the collector's seen devices never listed 02:00:00:00:00:0b");
    await page.click("#refresh-seen");
    await page.waitForTimeout(500);
  }
  await page.check(seen);
  await page.click("#authorize-seen");
  await page.waitForSelector('#devices td:text-is("02:00:00:00:00:0b")', { timeout: 30_000 });
  await shot(page, "08-devices");
  await page.click("#tab-apps");
  await page.waitForSelector('#device-presets td:text-is("printer")', { timeout: 30_000 });
  step("devices authorized (two at once, one from the seen list); presets shown");

  // Remote actions from the Instances page, answered sealed; then revoke the second sensor.
  await page.click("#nav-instances");
  const action = async (instance, label, expect) => {
    await page.click(`#instances tr[data-instance="${instance}"] button:has-text("${label}")`);
    await page.waitForFunction((e) => document.getElementById("action-result")?.textContent.includes(e), expect, { timeout: 30_000 });
  };
  await action("eu-collector", "Report config", "eu-collector: report_config done");
  await action("eu-sensor", "Restart capture", "eu-sensor: restart_capture done");
  // A process restart asks for confirmation, then is answered before the sensor stops.
  page.once("dialog", (d) => d.accept());
  await page.click('#instances tr[data-instance="eu-sensor"] button:text-is("Restart")');
  await page.waitForFunction(() => document.getElementById("action-result")?.textContent.includes("eu-sensor: restart done"), null, { timeout: 30_000 });
  // An update asks for the version; this sensor pins no release key, so it refuses, and says why
  // (asked again while the sensor is still coming back from its restart).
  const noKey = "eu-sensor: update refused: no release key pinned";
  for (const deadline = Date.now() + 60_000; ; ) {
    page.once("dialog", (d) => d.accept(""));
    await page.click('#instances tr[data-instance="eu-sensor"] button:text-is("Update")');
    await page.waitForFunction(() => !document.getElementById("action-result")?.textContent.endsWith("…"), null, { timeout: 30_000 });
    if ((await page.textContent("#action-result")).includes(noKey)) break;
    if (Date.now() > deadline) throw new Error(`no update refusal: ${await page.textContent("#action-result")}`);
    await page.waitForTimeout(1000);
  }
  // Remote assistance on the collector: enabled as admin for an hour (the key shown), its
  // status, then disabled.
  await page.click('#instances tr[data-instance="eu-collector"] button:has-text("Assist")');
  await page.check("#assist-admin");
  await page.click("#assist-enable");
  const assisted = (e) => page.waitForFunction((x) => document.getElementById("assist-result")?.textContent.includes(x), e, { timeout: 30_000 });
  await assisted("fmassist1_");
  await assisted("(as admin)");
  await shot(page, "09-assist");
  await page.click("#assist-status");
  await assisted('"requested_by": "console"');
  await page.click("#assist-disable");
  await assisted("ended");
  step("remote assistance enabled (key shown), its status, disabled");
  page.once("dialog", (d) => d.accept());
  // Every node of the test cluster runs: each says it stored the revocation.
  await action("eu-sensor-2", "Revoke", "eu-sensor-2: revoked (stored by every node (");
  await shot(page, "09-actions");
  step("remote actions answered, eu-sensor-2 revoked");
  say("LIVE");
  await expect("STOPPED");

  await page.click("#nav-instances");
  await page.waitForSelector('#instances tr[data-instance="eu-sensor"] td.status-offline', { timeout: 90_000 });
  await shot(page, "10-offline");
  step("sensor offline");
  // The session renewed itself (the test's manager gives 70 s sessions, renewed a minute before
  // they end, so every 10 s) while the steps above ran.
  await page.waitForFunction((first) => document.getElementById("who").title !== first, firstSession, { timeout: 90_000 });
  step(`session renewed: ${firstSession} -> ${await page.getAttribute("#who", "title")}`);

  // A fresh profile: sign in by importing the identity file.
  const b = await context();
  const fresh = await b.newPage();
  await fresh.goto(url);
  await fresh.setInputFiles("#identity-file", identity);
  await fresh.click("#signin");
  await fresh.waitForSelector("#nav:not([hidden])", { timeout: 30_000 });
  const who = await fresh.textContent("#who");
  await fresh.waitForSelector('#instances tr[data-instance="eu-sensor"]', { timeout: 90_000 });
  await shot(fresh, "11-signed-in-again");
  step(`signed in again as ${who}`);

  // Nothing the browser sent holds the private key, in any spelling.
  const text = await readFile(identity, "utf8");
  const hexKey = /private_key = "([0-9a-f]{64})"/.exec(text)[1];
  const raw = Buffer.from(hexKey, "hex");
  const spellings = [Buffer.from(hexKey), Buffer.from(hexKey.toUpperCase()), raw,
    Buffer.from(raw.toString("base64")), Buffer.from(raw.toString("base64url"))];
  const leaks = sent.filter((r) => spellings.some((s) => r.body.includes(s) || r.url.includes(s.toString())));
  say(`RESULT ${JSON.stringify({ who, requests: sent.length, with_body: sent.filter((r) => r.body.length).length, leaks: leaks.map((l) => l.url) })}`);
  await browser.close();
  process.exit(leaks.length ? 1 : 0);
} catch (e) {
  console.error(`e2e failed: ${e.stack ?? e}`);
  if (current) {
    await shot(current, "failure").catch(() => {});
    const errors = await current.$$eval(".error", (es) => es.map((x) => x.textContent)).catch(() => []);
    if (errors.length) console.error(`errors on the page: ${errors.join(" | ")}`);
  }
  await browser.close();
  process.exit(1);
}
