// node test/nats.mjs CONFIG.json
//
// A browser page (headless Debian Chromium) on the console's origin connects to a node's wss
// listener with the official NATS client and a watch user's credentials, takes the first
// sealed alert on SUBJECT and opens it with the console's WebCrypto envelope code; a page from
// another origin must be refused by the node. Prints one JSON line: what was opened, and what
// the other origin got. CONFIG: { ws_url, creds, secret, public, subject, origin_port }.
// Exits 1 on failure, 2 when the browser cannot start (a failed setup is a failure).

import { createServer } from "node:https";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./browser.mjs";

const config = JSON.parse(await readFile(process.argv[2], "utf8"));
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bundle = await readFile(join(root, "dist/console.js"));
const tls = { cert: await readFile(config.cert), key: await readFile(config.key) };

function serve(port) {
  const server = createServer(tls, (req, res) => {
    if (req.url === "/dist/console.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(bundle);
    } else if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>t</title>");
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((ok) => server.listen(port, "127.0.0.1", () => ok(server)));
}

const console_ = await serve(config.origin_port);
const other = await serve(0);
const browser = await launch();
let out;
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`browser: ${m.text()}`));
  await page.goto(`https://127.0.0.1:${config.origin_port}/`);
  const opened = await page.evaluate(async (c) => {
    const fm = await import("/dist/console.js");
    const nc = await fm.wsconnect({
      servers: [c.ws_url],
      authenticator: fm.credsAuthenticator(new TextEncoder().encode(c.creds)),
      inboxPrefix: c.inbox_prefix,
      timeout: 10_000,
    });
    const key = await fm.importPrivateKey(fm.unhex(c.secret), fm.unhex(c.public));
    const opener = new fm.Opener({ ownKey: key, ownPublic: fm.unhex(c.public) });
    const sub = nc.subscribe(c.subject, { max: 1 });
    for await (const m of sub) {
      const o = await opener.open(m.data, m.subject);
      await nc.close();
      return { subject: m.subject, payload: new TextDecoder().decode(o.payload), sender: fm.hex(o.sender) };
    }
    return null;
  }, config);
  // The same page served from another origin: the node must refuse its WebSocket.
  const page2 = await browser.newPage();
  await page2.goto(`https://127.0.0.1:${other.address().port}/`);
  const foreign = await page2.evaluate(async (c) => {
    const fm = await import("/dist/console.js");
    try {
      const nc = await fm.wsconnect({
        servers: [c.ws_url],
        authenticator: fm.credsAuthenticator(new TextEncoder().encode(c.creds)),
        timeout: 5_000,
        reconnect: false,
      });
      await nc.close();
      return "connected";
    } catch (e) {
      return `refused: ${e.message}`;
    }
  }, config);
  out = { opened, foreign };
} finally {
  await browser.close();
  console_.close();
  other.close();
}
console.log(JSON.stringify(out));
process.exit(out.opened ? 0 : 1);
