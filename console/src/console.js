// The console's browser bundle (esbuild, `npm run build` → dist/console.js), served by the
// manager: the pages (app.js), the envelope (WebCrypto) and the official NATS JavaScript
// client, which connects to the nodes' `wss` listeners directly — the manager never relays a
// user's messages. Loaded by the console page it starts the app; the tests import the rest.
import { start } from "./app.js";

export * from "./envelope.js";
export { credsAuthenticator, wsconnect } from "@nats-io/nats-core";

if (document.getElementById("main")) start();
