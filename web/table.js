// The node table. The model is every live registration in sorted order (an insert is a
// binary search); the DOM holds only the first `limit` rows that pass the filters ("Show
// more" raises it), so a fleet of 15,000 names costs a few hundred rows of layout, and a
// render is one pass over the order plus the rows that actually moved. Renders are
// coalesced: many changes in a burst cost one.
//
// Rows are reused: a row keeps its element while shown, so its focus survives and its "new
// row" highlight plays once (a row is only highlighted within 2 s of its registration,
// never again when a filter shows it later). A removed row fades out in place for a second;
// notices put between rows (tr.notice-row) stay where they were put.
//
// On a fleet relay a node is (source, cluster, name): rows carry data-source and a Source
// cell (shown in fleet mode only), and a row whose source cannot be reached now is marked
// stale in place (class, badge, title) whenever the sources' states change.

import {
  el, ago, clusterOf, fullName, healthKey, invisibles, nodeKey, revCompare, sourceOf, typeKey,
  typeLabel, duration,
} from "./format.js";

export const PAGE = 300;
const HIGHLIGHT_MS = 2000;
const HEALTH_RANK = { unresponsive: 0, unknown: 1, alive: 2 };

const COMPARE = {
  name: (a, b) => fullName(a).localeCompare(fullName(b)),
  cluster: (a, b) => clusterOf(a).localeCompare(clusterOf(b)),
  source: (a, b) => sourceOf(a).localeCompare(sourceOf(b)),
  port: (a, b) => a.port - b.port,
  type: (a, b) => typeLabel(a).localeCompare(typeLabel(b)),
  health: (a, b) => HEALTH_RANK[healthKey(a)] - HEALTH_RANK[healthKey(b)],
  registered: (a, b) => revCompare(a.createRevision, b.createRevision),
  id: (a, b) => revCompare(a.registrationId, b.registrationId),
};

function isExtra(tr) {
  return tr.classList.contains("removed") || tr.classList.contains("notice-row");
}

export class NodeTable {
  /**
   * @param tbody the rows' parent; @param headers the th[data-sort] elements
   * @param actions {details(key), evict(key), rendered()}
   */
  constructor(tbody, headers, actions) {
    this.tbody = tbody;
    this.headers = headers;
    this.actions = actions;
    this.entries = new Map(); // key -> {node, tr (while shown), addedAt}
    this.order = []; // keys, sorted
    this.shown = []; // the entries in the DOM, in order
    this.matched = 0; // entries passing the filters
    this.limit = PAGE;
    this.sort = { key: "registered", dir: -1 };
    this.matches = () => true;
    this.enabled = true;
    this.pending = false;
    this.now = () => Date.now();
    // Why a node is only its last known registration ("" when it is current): set by the page
    // from its sources' states (a relay); a daemon's nodes are always current.
    this.staleOf = () => "";
    for (const th of headers) {
      th.querySelector("button").addEventListener("click", () => this.sortBy(th.dataset.sort));
    }
    this.renderSortState();
  }

  compare(a, b) {
    const c = COMPARE[this.sort.key](a, b) * this.sort.dir;
    if (c !== 0) return c;
    // Total: name, then cluster, then source (a key is unique).
    if (a.name !== b.name) return a.name < b.name ? -1 : 1;
    return clusterOf(a).localeCompare(clusterOf(b)) || sourceOf(a).localeCompare(sourceOf(b));
  }

  sortBy(key) {
    if (this.sort.key === key) this.sort.dir = -this.sort.dir;
    else this.sort = { key, dir: 1 };
    this.renderSortState();
    this.order.sort((x, y) => this.compare(this.entries.get(x).node, this.entries.get(y).node));
    this.render();
  }

  renderSortState() {
    for (const th of this.headers) {
      const sorted = th.dataset.sort === this.sort.key;
      th.setAttribute("aria-sort", !sorted ? "none" : this.sort.dir > 0 ? "ascending" : "descending");
    }
  }

  // ---- The model --------------------------------------------------------------------

  /** Replaces everything (a fresh initial state). */
  setAll(nodes) {
    this.entries.clear();
    this.tbody.replaceChildren();
    this.shown = [];
    const sorted = [...nodes].sort((a, b) => this.compare(a, b));
    this.order = sorted.map(nodeKey);
    for (const node of sorted) this.entries.set(nodeKey(node), { node, tr: null, addedAt: 0 });
    this.render();
  }

  /** The first index whose node sorts at or after `node`. */
  lowerBound(node) {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.compare(this.entries.get(this.order[mid]).node, node) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insertKey(k, entry) {
    this.order.splice(this.lowerBound(entry.node), 0, k);
    this.entries.set(k, entry);
  }

  /** Takes k out of the order; its entry (still in this.entries) says where it sorted. */
  removeKey(k) {
    const at = this.lowerBound(this.entries.get(k).node);
    const i = this.order[at] === k ? at : this.order.indexOf(k);
    if (i >= 0) this.order.splice(i, 1);
  }

  add(node) {
    const k = nodeKey(node);
    const old = this.entries.get(k);
    if (old) {
      this.removeKey(k);
      if (old.tr) old.tr.remove();
    }
    this.insertKey(k, { node, tr: null, addedAt: Date.now() });
    this.request();
  }

  /** The same registration with newer facts (health, holder): redrawn in its element. */
  update(node) {
    const k = nodeKey(node);
    const cur = this.entries.get(k);
    if (!cur || cur.node.registrationId !== node.registrationId) return;
    this.removeKey(k);
    cur.node = node;
    if (cur.tr) this.fill(cur.tr, node);
    this.insertKey(k, cur);
    this.request();
  }

  /** Returns the row fading out (null when it was not shown). */
  remove(node) {
    const k = nodeKey(node);
    const cur = this.entries.get(k);
    if (!cur || cur.node.registrationId !== node.registrationId) return null;
    this.removeKey(k);
    this.entries.delete(k);
    const tr = cur.tr;
    this.request();
    if (!tr || !tr.isConnected) return null;
    tr.classList.add("removed");
    tr.classList.remove("added");
    for (const b of tr.querySelectorAll("button")) b.disabled = true;
    setTimeout(() => tr.remove(), 1000);
    return tr;
  }

  node(k) {
    const cur = this.entries.get(k);
    return cur ? cur.node : null;
  }

  nodes() {
    return [...this.entries.values()].map((e) => e.node);
  }

  /** The row of k as it is on screen now: shown, or fading out after its removal. */
  rowOf(k) {
    const cur = this.entries.get(k);
    if (cur && cur.tr && cur.tr.isConnected) return cur.tr;
    for (const tr of this.tbody.querySelectorAll("tr.removed")) if (tr.dataset.key === k) return tr;
    return null;
  }

  setFilter(matches) {
    this.matches = matches;
    this.limit = PAGE;
    this.render();
  }

  showMore() {
    this.limit += PAGE;
    this.render();
  }

  setEnabled(enabled) {
    if (this.enabled === enabled) return;
    this.enabled = enabled;
    for (const e of this.shown) this.markStale(e.tr, e.node);
  }

  /** The sources' states changed: the shown rows' stale marks follow, in place. */
  restale() {
    for (const e of this.shown) this.markStale(e.tr, e.node);
  }

  // ---- The DOM ------------------------------------------------------------------------

  request() {
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => this.render(), 30);
  }

  render() {
    this.pending = false;
    const want = [];
    let matched = 0;
    for (const k of this.order) {
      const e = this.entries.get(k);
      if (!this.matches(e.node)) continue;
      matched++;
      if (want.length < this.limit) want.push(e);
    }
    this.matched = matched;
    const keep = new Set();
    for (const e of want) {
      if (!e.tr) e.tr = this.makeRow(e);
      keep.add(e.tr);
    }
    // Rows no longer shown go (their entries forget them); fading rows and notices stay.
    for (const tr of [...this.tbody.children]) {
      if (isExtra(tr) || keep.has(tr)) continue;
      tr.remove();
      const e = this.entries.get(tr.dataset.key);
      if (e && e.tr === tr) e.tr = null;
    }
    // Put the wanted rows in order, moving only those out of place.
    let cursor = this.tbody.firstElementChild;
    for (const e of want) {
      while (cursor && isExtra(cursor)) cursor = cursor.nextElementSibling;
      if (cursor === e.tr) {
        cursor = cursor.nextElementSibling;
        continue;
      }
      this.tbody.insertBefore(e.tr, cursor);
    }
    this.shown = want;
    this.actions.rendered();
  }

  /** Ages tick against `now` (frozen while the stream is down: they are as of then). */
  tick(nowMs) {
    for (const e of this.shown) {
      const since = ago(e.node.registeredAt, nowMs);
      if (e.tr._since.textContent !== since) e.tr._since.textContent = since;
      const h = healthSince(e.node, nowMs);
      if (e.tr._healthSince.textContent !== h) e.tr._healthSince.textContent = h;
    }
  }

  makeRow(entry) {
    const tr = el("tr");
    if (Date.now() - entry.addedAt < HIGHLIGHT_MS) {
      tr.classList.add("added");
      tr.addEventListener("animationend", () => tr.classList.remove("added"), { once: true });
      // With animations off (prefers-reduced-motion) animationend never fires.
      setTimeout(() => tr.classList.remove("added"), HIGHLIGHT_MS + 500);
    }
    this.fill(tr, entry.node);
    return tr;
  }

  /** (Re)draws a row's cells and attributes for `node`, keeping the element. */
  fill(tr, node) {
    const k = nodeKey(node);
    const health = healthKey(node);
    const now = this.now();
    Object.assign(tr.dataset, { key: k, name: node.name, cluster: clusterOf(node),
      source: sourceOf(node), registrationId: node.registrationId, health, type: typeKey(node) });
    tr.classList.toggle("unresponsive", health === "unresponsive");
    const hidden = invisibles(node.name);
    const name = el("td", { className: "name", "data-label": "Name" },
      el("span", { className: "node-name" }, node.name),
      node.host ? el("span", { className: "node-host" }, "@" + node.host) : null,
      hidden.length ? el("span", { className: "invisible-warning", role: "img",
        "aria-label": "contains invisible characters", title: "contains invisible characters: " +
          hidden.join(" ") }, "⚠") : null);
    tr._name = name;
    tr._since = el("td", { className: "since", "data-label": "Registered",
      title: node.registeredAt }, ago(node.registeredAt, now));
    tr._healthSince = el("span", { className: "since muted" }, healthSince(node, now));
    tr.replaceChildren(
      name,
      el("td", { className: "source", "data-label": "Source" }, ...breakable(sourceOf(node))),
      el("td", { className: "cluster", "data-label": "Cluster" }, clusterOf(node)),
      el("td", { className: "port num", "data-label": "Port" }, String(node.port)),
      el("td", { className: "type", "data-label": "Type" }, typeLabel(node)),
      el("td", { className: "health", "data-label": "Health", title: healthTitle(node) },
        el("span", { className: "badge health-" + health }, health), tr._healthSince),
      el("td", { className: "peer", "data-label": "Peer", title: node.peerAddress || "" },
        peerHost(node.peerAddress || "")),
      tr._since,
      el("td", { className: "id num", "data-label": "Registration" }, node.registrationId),
      el("td", { className: "actions" },
        el("button", { type: "button", className: "details",
          "aria-label": "Details of " + fullName(node) + " (" + where(node) + ")",
          onclick: () => this.actions.details(k) }, "Details"),
        el("button", { type: "button", className: "evict", disabled: !this.enabled,
          "aria-label": "Evict " + fullName(node) + " (" + where(node) + ")",
          onclick: () => this.actions.evict(k) }, "Evict")));
    this.markStale(tr, node);
  }

  /**
   * A stale row is dimmed, badged and titled with why; its eviction is disabled (the relay
   * cannot reach the daemon that has it).
   */
  markStale(tr, node) {
    const why = this.staleOf(node);
    tr.classList.toggle("stale", why !== "");
    if (why) tr.title = why;
    else tr.removeAttribute("title");
    // The badge exists only while stale: the name cell's text is the node's name otherwise.
    let badge = tr._name.querySelector(".stale-badge");
    if (why && !badge) badge = tr._name.appendChild(el("span", { className: "badge stale-badge" }, "stale"));
    if (!why && badge) badge.remove();
    if (badge) badge.title = why;
    tr.querySelector("button.evict").disabled = !this.enabled || why !== "";
  }
}

/** "cluster blue", and on a relay "cluster blue on pod-a": what tells two rows of a name apart. */
function where(node) {
  return "cluster " + clusterOf(node) + (node.source ? " on " + node.source : "");
}

/** A source name ("vm@10.0.0.7:4370") may wrap after its "@" and nowhere else it need not. */
function breakable(text) {
  return text.split("@").flatMap((part, i) => (i ? [el("wbr"), "@" + part] : [part]));
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
