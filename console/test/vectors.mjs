// node test/vectors.mjs VECTORS.json [OUT.json]
//
// Runs link/ENVELOPE.md's committed test vectors through the console's WebCrypto envelope code
// in headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM): each vector sealed with its
// fixed randomness must give the committed bytes, and the committed bytes must open; then the
// opener's refusals (tampered byte, other subject, other recipient, untrusted sender, replay,
// stale time, truncation); then the browser seals fresh messages with its own randomness, which
// it writes to OUT.json for the Rust opener to open (tests/console_envelope.rs does).
//
// Prints one line per check and a summary; exits 1 on any failure, 2 when the browser cannot
// be started (a setup failure is a failure, never a skip).

import { createServer } from "node:http";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./browser.mjs";

const [vectorsPath, outPath] = process.argv.slice(2);
if (!vectorsPath) {
  console.error("usage: node test/vectors.mjs VECTORS.json [OUT.json]");
  process.exit(2);
}
const vectors = JSON.parse(await readFile(vectorsPath, "utf8")).vectors;
const root = join(dirname(fileURLToPath(import.meta.url)), "..");

// The page and the module come from a loopback HTTP server: localhost is a secure context,
// which WebCrypto needs, and module imports do not work from file://.
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
  if (path === "/") {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>envelope vectors</title>");
    return;
  }
  if (!path.startsWith("/src/") || path.includes("..")) {
    res.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(join(root, path));
    res.writeHead(200, { "content-type": "text/javascript" });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await launch();

let result;
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`browser: ${m.text()}`));
  await page.goto(url);
  result = await page.evaluate(async (vectors) => {
    const env = await import("/src/envelope.js");
    const { unhex, hex } = env;
    const checks = [];
    const check = (name, ok, detail = "") => checks.push({ name, ok, detail });
    const refuses = async (name, kind, f) => {
      try {
        await f();
        check(name, false, `opened; expected ${kind}`);
      } catch (e) {
        check(name, e.kind === kind, e.kind ? e.kind : String(e));
      }
    };
    const ephemeralPublic = (sealed) => sealed.slice(68, 100);
    for (const v of vectors) {
      const senderKey = await env.importPrivateKey(unhex(v.sender_private), unhex(v.sender_public));
      const recipientKey = await env.importPrivateKey(
        unhex(v.recipient_private),
        unhex(v.recipient_public),
      );
      const expected = unhex(v.sealed);
      const E = ephemeralPublic(expected);
      const sealed = await env.seal({
        senderKey,
        senderPublic: unhex(v.sender_public),
        recipientPublic: unhex(v.recipient_public),
        subject: v.subject,
        payload: unhex(v.payload),
        ephemeral: { privateKey: await env.importPrivateKey(unhex(v.ephemeral_private), E), publicRaw: E },
        messageId: unhex(v.message_id),
        nonce: unhex(v.nonce),
        timeMicros: BigInt(v.time_micros),
      });
      check(`${v.name}: seals to the committed bytes`, hex(sealed) === v.sealed, hex(sealed));
      const at = BigInt(v.time_micros);
      const opener = () =>
        new env.Opener({
          ownKey: recipientKey,
          ownPublic: unhex(v.recipient_public),
          trusted: [v.sender_public],
        });
      try {
        const o = await opener().open(expected, v.subject, at);
        check(`${v.name}: opens`, hex(o.payload) === v.payload && hex(o.sender) === v.sender_public);
      } catch (e) {
        check(`${v.name}: opens`, false, String(e));
      }
      const flipped = expected.slice();
      flipped[flipped.length - 1] ^= 1;
      await refuses(`${v.name}: a changed bit`, "Forged", () => opener().open(flipped, v.subject, at));
      const header = expected.slice();
      header[120] ^= 0x80; // the time field: authenticated as AAD
      await refuses(`${v.name}: a changed header`, "Forged", () => opener().open(header, v.subject, at));
      await refuses(`${v.name}: another subject`, "Forged", () =>
        opener().open(expected, v.subject + ".x", at),
      );
      await refuses(`${v.name}: truncated`, "Truncated", () =>
        opener().open(expected.slice(0, env.OVERHEAD - 1), v.subject, at),
      );
      await refuses(`${v.name}: stale`, "TooOld", () =>
        opener().open(expected, v.subject, at + BigInt(env.WINDOW_MICROS) + 1n),
      );
      const once = opener();
      await once.open(expected, v.subject, at).catch(() => {});
      await refuses(`${v.name}: replayed`, "Replayed", () => once.open(expected, v.subject, at));
      const distrustful = new env.Opener({ ownKey: recipientKey, ownPublic: unhex(v.recipient_public) });
      if (v.sender_public !== v.recipient_public) {
        await refuses(`${v.name}: untrusted sender`, "UntrustedSender", () =>
          distrustful.open(expected, v.subject, at),
        );
      }
      const other = expected.slice();
      other[40] ^= 1;
      await refuses(`${v.name}: another recipient`, "WrongRecipient", () =>
        opener().open(other, v.subject, at),
      );
    }
    // Fresh messages with the browser's own randomness, from and to the first vector's key.
    const v = vectors[0];
    const key = await env.importPrivateKey(unhex(v.sender_private), unhex(v.sender_public));
    const fresh = [];
    for (let i = 0; i < 3; i++) {
      const subject = `flowmesh.console.test.${i}`;
      const payload = new TextEncoder().encode(`sealed in the browser #${i}`);
      const sealed = await env.seal({
        senderKey: key,
        senderPublic: unhex(v.sender_public),
        recipientPublic: unhex(v.recipient_public),
        subject,
        payload,
      });
      fresh.push({ subject, payload: hex(payload), sealed: hex(sealed) });
    }
    const ids = new Set(fresh.map((f) => f.sealed.slice(200, 232)));
    check("fresh messages have their own ids", ids.size === fresh.length);
    // A non-extractable private key stays so.
    let exported = true;
    try {
      await crypto.subtle.exportKey("jwk", key);
    } catch {
      exported = false;
    }
    check("an imported private key cannot be exported", !exported);
    return { checks, fresh, userAgent: navigator.userAgent };
  }, vectors);
} finally {
  await browser.close();
  server.close();
}

let failed = 0;
for (const c of result.checks) {
  console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name}${c.ok ? "" : ` (${c.detail})`}`);
  if (!c.ok) failed++;
}
console.log(
  `${result.checks.length - failed} passed, ${failed} failed; ${vectors.length} vectors in ${result.userAgent}`,
);
if (outPath) await writeFile(outPath, JSON.stringify({ key: vectors[0].sender_private, fresh: result.fresh }));
process.exit(failed ? 1 : 0);
