// Held names: evicted names the daemon keeps reserved, so the evicted node's own
// re-registration is refused until the hold ends. Read once per fresh start (/v1/holds) and
// kept current by the stream's HELD / HOLD_LIFTED / HOLD_EXPIRED events.

import { el, clusterOf, duration, nodeKey } from "./format.js";

export class HoldsPanel {
  /** @param list the <ul>; @param empty its "none" text; @param lift(hold, li) */
  constructor(list, empty, lift) {
    this.list = list;
    this.empty = empty;
    this.lift = lift;
    this.holds = new Map(); // key -> Hold
    this.matches = () => true;
    this.enabled = true;
  }

  setAll(holds) {
    this.holds = new Map(holds.map((h) => [nodeKey(h), h]));
    this.render();
  }

  put(hold) {
    this.holds.set(nodeKey(hold), hold);
    this.render();
  }

  drop(hold) {
    const cur = this.holds.get(nodeKey(hold));
    // A newer hold of the same name (its revision) stays.
    if (cur && cur.revision === hold.revision) this.holds.delete(nodeKey(hold));
    this.render();
  }

  count() {
    let n = 0;
    for (const h of this.holds.values()) if (this.matches(h)) n++;
    return n;
  }

  setFilter(matches) {
    this.matches = matches;
    this.render();
  }

  setEnabled(enabled) {
    this.enabled = enabled;
    for (const b of this.list.querySelectorAll("button.lift")) b.disabled = !enabled;
  }

  item(k) {
    for (const li of this.list.children) if (li.dataset.key === k) return li;
    return null;
  }

  render() {
    const now = Date.now();
    const shown = [...this.holds.values()].filter((h) => this.matches(h))
      .sort((a, b) => Date.parse(a.expiresAt) - Date.parse(b.expiresAt));
    // Keep the items that stay (a notice inside one must not vanish), rebuild the rest.
    const keep = new Map([...this.list.children].map((li) => [li.dataset.key, li]));
    this.list.replaceChildren(...shown.map((h) => {
      const old = keep.get(nodeKey(h));
      return old && old.dataset.revision === h.revision ? old : this.makeItem(h, now);
    }));
    this.empty.hidden = shown.length !== 0;
    this.tick(now);
  }

  makeItem(hold, now) {
    const li = el("li", { className: "hold",
      dataset: { key: nodeKey(hold), name: hold.name, cluster: clusterOf(hold), revision: hold.revision,
        source: hold.source || "" } },
    el("span", { className: "hold-name" }, hold.name),
    el("span", { className: "cluster-tag" }, clusterOf(hold)),
    // A relay's hold is on one of its sources (the lift goes there).
    hold.source ? el("span", { className: "source-tag" }, hold.source) : null,
    el("span", { className: "remaining", dataset: { expiresAt: hold.expiresAt } },
      remaining(hold.expiresAt, now)),
    hold.actor ? el("span", { className: "actor" }, "by " + hold.actor) : null,
    hold.reason ? el("q", { className: "reason" }, hold.reason) : null,
    el("button", { type: "button", className: "lift", disabled: !this.enabled,
      "aria-label": "Lift the hold on " + hold.name + " (cluster " + clusterOf(hold) +
        (hold.source ? " on " + hold.source : "") + ")",
      onclick: () => this.lift(hold, li) }, "Lift"));
    return li;
  }

  tick(now) {
    for (const span of this.list.querySelectorAll(".remaining")) {
      span.textContent = remaining(span.dataset.expiresAt, now);
    }
  }
}

/** "42 s left", "4 min 05 s left", "2 h 10 min left": seconds count while they matter. */
function remaining(expiresAt, now) {
  const s = Math.ceil((Date.parse(expiresAt) - now) / 1000);
  if (s <= 0) return "ending…";
  if (s < 90) return s + " s left";
  if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s left";
  return duration(s * 1000) + " left";
}
