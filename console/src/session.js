// Signing in: the browser generates an nkey, seals its public half to the cloud with the
// user's key (proof that it holds the key), and gets back a short-lived NATS user JWT for it.
// Then it connects to the nodes' WebSocket listeners itself. The nkey seed stays in memory.

import { jwtAuthenticator, nkeys, wsconnect } from "@nats-io/nats-core";
import { sealFrom, unhex } from "./envelope.js";

/** A request sealed to the cloud on `subject` and POSTed to `path`; the JSON answer. */
async function sealedPost(cfg, me, path, subject, body) {
  const sealed = await sealFrom(me, subject, new TextEncoder().encode(JSON.stringify(body)), unhex(cfg.cloud_public_key));
  const r = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: sealed,
  });
  const answer = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(answer.error ?? `HTTP ${r.status}`);
  return answer;
}

/** Asks the manager (manager/src/console/calls.rs): `instances`, `add_instance`, `revoke`. */
export const managerCall = (cfg, me, body) =>
  sealedPost(cfg, me, "/api/call", "flowmesh.console.call", body);

/**
 * The nodes, nearest first: each is asked for its first WebSocket frame (the NATS INFO) and
 * timed; nodes that do not answer within 3 s go last. The client then tries them in order.
 */
async function nearestFirst(urls) {
  const time = (url) =>
    new Promise((done) => {
      const t0 = performance.now();
      let ws;
      const end = (ms) => {
        try { ws?.close(); } catch { /* closing a socket that failed */ }
        done({ url, ms });
      };
      const timer = setTimeout(() => end(Infinity), 3000);
      try {
        ws = new WebSocket(url);
        ws.onmessage = () => { clearTimeout(timer); end(performance.now() - t0); };
        ws.onerror = () => { clearTimeout(timer); end(Infinity); };
      } catch {
        clearTimeout(timer);
        end(Infinity);
      }
    });
  const timed = await Promise.all(urls.map(time));
  return timed.sort((a, b) => a.ms - b.ms);
}

export async function signIn(cfg, me) {
  const kp = nkeys.createUser();
  const seed = kp.getSeed();
  const answer = await sealedPost(cfg, me, "/api/login", cfg.login_subject, { user_nkey: kp.getPublicKey() });
  if (cfg.nodes.length === 0) throw new Error("the manager knows no node with a WebSocket listener");
  const ranked = await nearestFirst(cfg.nodes.map((n) => n.url));
  const nc = await wsconnect({
    servers: ranked.map((r) => r.url),
    noRandomize: true,
    authenticator: jwtAuthenticator(answer.jwt, seed),
    inboxPrefix: answer.inbox_prefix,
    name: answer.name,
    timeout: 10_000,
    maxReconnectAttempts: -1,
  });
  const near = cfg.nodes.find((n) => n.url === ranked[0].url);
  return { nc, user: answer.user, session: answer.name, expires: answer.expires, nearest: near, ranked };
}
