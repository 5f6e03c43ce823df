// Building the pages: elements made with textContent only (nothing from the network is ever
// parsed as HTML, so nothing in an alert, a heartbeat or a policy can run as script).

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

export function show(...nodes) {
  document.getElementById("main").replaceChildren(...nodes);
}

export function problem(where, e) {
  where.replaceChildren(el("p", { class: "error", role: "alert" }, String(e?.message ?? e)));
}
