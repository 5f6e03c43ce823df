// The signed-in user's key, kept in IndexedDB as a non-extractable CryptoKey: it survives a
// reload, and no script (ours included) can read its bytes back.

const DB = "flowmesh-console";
const STORE = "identity";

function open() {
  return new Promise((ok, fail) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
}

function tx(mode, f) {
  return open().then(
    (db) =>
      new Promise((ok, fail) => {
        const t = db.transaction(STORE, mode);
        const r = f(t.objectStore(STORE));
        t.oncomplete = () => ok(r?.result);
        t.onerror = () => fail(t.error);
      }),
  );
}

/** `{ publicHex, key }` or undefined. */
export const load = () => tx("readonly", (s) => s.get("me"));
export const save = (me) => tx("readwrite", (s) => s.put(me, "me"));
export const clear = () => tx("readwrite", (s) => s.delete("me"));
