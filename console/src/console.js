// The console's browser bundle (esbuild, `npm run build` → dist/console.js): the envelope
// (WebCrypto) and the official NATS JavaScript client, which connects to the nodes' `wss`
// listeners directly — the manager never relays users' messages.
export * from "./envelope.js";
export { credsAuthenticator, wsconnect } from "@nats-io/nats-core";
