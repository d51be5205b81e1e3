// The node table: one row per live registration, kept in sorted order incrementally (an
// insert is a binary search, not a re-render), so a fleet of thousands keeps up with churn.
// Filtering only toggles `hidden`; the "new row" highlight is removed once it has played,
// so un-hiding a row never replays it.

import {
  el, ago, clusterOf, fullName, healthKey, nodeKey, typeKey, typeLabel, duration,
} from "./format.js";

const HEALTH_RANK = { unresponsive: 0, unknown: 1, alive: 2 };

function big(x) {
  return BigInt(x || 0);
}

function cmpBig(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

const COMPARE = {
  name: (a, b) => fullName(a).localeCompare(fullName(b)),
  cluster: (a, b) => clusterOf(a).localeCompare(clusterOf(b)),
  port: (a, b) => a.port - b.port,
  type: (a, b) => typeLabel(a).localeCompare(typeLabel(b)),
  health: (a, b) => HEALTH_RANK[healthKey(a)] - HEALTH_RANK[healthKey(b)],
  registered: (a, b) => cmpBig(big(a.createRevision), big(b.createRevision)),
  id: (a, b) => cmpBig(big(a.registrationId), big(b.registrationId)),
};

export class NodeTable {
  /**
   * @param tbody the rows' parent; @param headers the th[data-sort] elements
   * @param actions {details(key), evict(key)}
   */
  constructor(tbody, headers, actions) {
    this.tbody = tbody;
    this.headers = headers;
    this.actions = actions;
    this.rows = new Map(); // key -> {node, tr}
    this.order = []; // keys, sorted
    this.sort = { key: "registered", dir: -1 };
    this.matches = () => true;
    this.enabled = true;
    this.now = () => Date.now();
    for (const th of headers) {
      th.querySelector("button").addEventListener("click", () => this.sortBy(th.dataset.sort));
    }
    this.renderSortState();
  }

  compare(a, b) {
    const c = COMPARE[this.sort.key](a, b) * this.sort.dir;
    if (c !== 0) return c;
    // Stable and total: name, then cluster.
    return a.name.localeCompare(b.name) || clusterOf(a).localeCompare(clusterOf(b));
  }

  sortBy(key) {
    if (this.sort.key === key) this.sort.dir = -this.sort.dir;
    else this.sort = { key, dir: 1 };
    this.renderSortState();
    this.order.sort((x, y) => this.compare(this.rows.get(x).node, this.rows.get(y).node));
    // Moving rows keeps them (and their focus); removed rows fading out stay at the end.
    for (const k of this.order) this.tbody.appendChild(this.rows.get(k).tr);
    for (const tr of [...this.tbody.querySelectorAll("tr.removed, tr.notice-row")]) {
      this.tbody.appendChild(tr);
    }
  }

  renderSortState() {
    for (const th of this.headers) {
      const sorted = th.dataset.sort === this.sort.key;
      th.setAttribute("aria-sort", !sorted ? "none" : this.sort.dir > 0 ? "ascending" : "descending");
    }
  }

  /** Replaces everything (a fresh initial state). */
  setAll(nodes) {
    this.rows.clear();
    this.order = [];
    this.tbody.replaceChildren();
    const sorted = [...nodes].sort((a, b) => this.compare(a, b));
    for (const node of sorted) {
      const tr = this.makeRow(node);
      this.rows.set(nodeKey(node), { node, tr });
      this.order.push(nodeKey(node));
      this.tbody.appendChild(tr);
    }
  }

  /** Where `node` belongs in this.order (binary search). */
  position(node) {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.compare(this.rows.get(this.order[mid]).node, node) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  place(node, tr) {
    const k = nodeKey(node);
    const i = this.position(node);
    const next = i < this.order.length ? this.rows.get(this.order[i]).tr : null;
    this.order.splice(i, 0, k);
    this.rows.set(k, { node, tr });
    // Moving an element restarts its animation and drops its focus: only when needed.
    if (!tr.isConnected || tr.nextElementSibling !== next) this.tbody.insertBefore(tr, next);
  }

  unplace(k) {
    const i = this.order.indexOf(k);
    if (i >= 0) this.order.splice(i, 1);
    this.rows.delete(k);
  }

  add(node) {
    const k = nodeKey(node);
    const old = this.rows.get(k);
    if (old) {
      old.tr.remove();
      this.unplace(k);
    }
    const tr = this.makeRow(node);
    tr.classList.add("added");
    tr.addEventListener("animationend", () => tr.classList.remove("added"), { once: true });
    // With animations off (prefers-reduced-motion) animationend never fires.
    setTimeout(() => tr.classList.remove("added"), 2500);
    this.place(node, tr);
  }

  /**
   * The same registration with newer facts (its health): the row's cells are redrawn in
   * the same element, so its focus and a playing highlight survive; it moves only when the
   * sort order says so.
   */
  update(node) {
    const k = nodeKey(node);
    const cur = this.rows.get(k);
    if (!cur || cur.node.registrationId !== node.registrationId) return;
    const fresh = this.makeRow(node);
    const tr = cur.tr;
    tr.replaceChildren(...fresh.childNodes);
    Object.assign(tr.dataset, fresh.dataset);
    tr.classList.toggle("unresponsive", fresh.classList.contains("unresponsive"));
    this.unplace(k);
    this.place(node, tr);
  }

  /** Returns the removed row (fading out for a second), or null. */
  remove(node) {
    const k = nodeKey(node);
    const cur = this.rows.get(k);
    if (!cur || cur.node.registrationId !== node.registrationId) return null;
    this.unplace(k);
    const tr = cur.tr;
    tr.classList.add("removed");
    tr.classList.remove("added");
    for (const b of tr.querySelectorAll("button")) b.disabled = true;
    setTimeout(() => tr.remove(), 1000);
    return tr;
  }

  node(k) {
    const cur = this.rows.get(k);
    return cur ? cur.node : null;
  }

  nodes() {
    return [...this.rows.values()].map((r) => r.node);
  }

  rowOf(k) {
    const cur = this.rows.get(k);
    return cur ? cur.tr : null;
  }

  setFilter(matches) {
    this.matches = matches;
    for (const { node, tr } of this.rows.values()) tr.hidden = !matches(node);
  }

  setEnabled(enabled) {
    this.enabled = enabled;
    for (const { tr } of this.rows.values()) {
      for (const b of tr.querySelectorAll("button.evict")) b.disabled = !enabled;
    }
  }

  /** Ages tick against `now` (frozen while the stream is down: they are as of then). */
  tick(nowMs) {
    for (const { node, tr } of this.rows.values()) {
      tr.querySelector("td.since").textContent = ago(node.registeredAt, nowMs);
      const h = tr.querySelector("td.health .since");
      if (h) h.textContent = healthSince(node, nowMs);
    }
  }

  makeRow(node) {
    const k = nodeKey(node);
    const health = healthKey(node);
    const now = this.now();
    const tr = el("tr", {
      tabindex: "0",
      className: health === "unresponsive" ? "unresponsive" : "",
      dataset: { key: k, name: node.name, cluster: clusterOf(node),
        registrationId: node.registrationId, health, type: typeKey(node) },
    });
    const name = el("td", { className: "name", "data-label": "Name" },
      el("span", { className: "node-name" }, node.name),
      node.host ? el("span", { className: "node-host" }, "@" + node.host) : null);
    const since = el("td", { className: "since", "data-label": "Registered",
      title: node.registeredAt }, ago(node.registeredAt, now));
    tr.append(
      name,
      el("td", { className: "cluster", "data-label": "Cluster" }, clusterOf(node)),
      el("td", { className: "port num", "data-label": "Port" }, String(node.port)),
      el("td", { className: "type", "data-label": "Type" }, typeLabel(node)),
      el("td", { className: "health", "data-label": "Health", title: healthTitle(node) },
        el("span", { className: "badge health-" + health }, health),
        el("span", { className: "since muted" }, healthSince(node, now))),
      el("td", { className: "peer", "data-label": "Peer", title: node.peerAddress || "" },
        peerHost(node.peerAddress || "")),
      since,
      el("td", { className: "id num", "data-label": "Registration" }, node.registrationId),
      el("td", { className: "actions" },
        el("button", { type: "button", className: "details",
          "aria-label": "Details of " + fullName(node) + " (cluster " + clusterOf(node) + ")",
          onclick: () => this.actions.details(k) }, "Details"),
        el("button", { type: "button", className: "evict", disabled: !this.enabled,
          "aria-label": "Evict " + fullName(node) + " (cluster " + clusterOf(node) + ")",
          onclick: () => this.actions.evict(k) }, "Evict")));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && e.target === tr) this.actions.details(k);
    });
    tr.hidden = !this.matches(node);
    return tr;
  }
}

/** The peer's address without its port (the port is in the title and the details). */
function peerHost(peer) {
  const m = /^\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return m ? m[1] : peer;
}

function healthSince(node, nowMs) {
  const h = node.health || {};
  if (healthKey(node) === "unknown" || !h.since) return "";
  return duration(nowMs - Date.parse(h.since));
}

function healthTitle(node) {
  const h = node.health || {};
  const parts = [];
  if (h.lastProbe) parts.push("last probe " + h.lastProbe);
  if (h.consecutiveFailures) parts.push(h.consecutiveFailures + " failed probes in a row");
  if (h.lastError) parts.push("last error: " + h.lastError);
  return parts.join("; ") || "not probed yet";
}
