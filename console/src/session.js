// Signing in: the browser generates an nkey, seals its public half to the cloud with the
// user's key (proof that it holds the key), and gets back a short-lived NATS user JWT for it.
// Then it connects to the nodes' WebSocket listeners itself. The nkey seed stays in memory.

import { jwtAuthenticator, nkeys, wsconnect } from "@nats-io/nats-core";
import { seal, unhex } from "./envelope.js";

export async function signIn(cfg, me) {
  const kp = nkeys.createUser();
  const seed = kp.getSeed();
  const request = new TextEncoder().encode(JSON.stringify({ user_nkey: kp.getPublicKey() }));
  const body = await seal({
    senderKey: me.key,
    senderPublic: unhex(me.publicHex),
    recipientPublic: unhex(cfg.cloud_public_key),
    subject: cfg.login_subject,
    payload: request,
  });
  const r = await fetch("/api/login", {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body,
  });
  const answer = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok) throw new Error(answer.error ?? `sign-in failed (HTTP ${r.status})`);
  const servers = cfg.nodes.map((n) => n.url);
  if (servers.length === 0) throw new Error("the manager knows no node with a WebSocket listener");
  const nc = await wsconnect({
    servers,
    authenticator: jwtAuthenticator(answer.jwt, seed),
    inboxPrefix: answer.inbox_prefix,
    name: answer.name,
    timeout: 10_000,
    maxReconnectAttempts: -1,
  });
  return { nc, user: answer.user, session: answer.name, expires: answer.expires };
}
