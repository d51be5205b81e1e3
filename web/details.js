// The details of one node: everything the API knows about its registration, its health and
// the process holding its epmd connection (read fresh: holders are looked up in the
// background and are not stream events), and its recent events.

import { api, describeError } from "./api.js";
import {
  el, clock, clusterOf, extraLabel, fullName, healthKey, nodeKey, sourceOf, typeLabel,
} from "./format.js";
import { eventItem, eventKey } from "./events.js";

const HOLDER_STATUS = {
  FOUND: "found",
  NOT_ON_HOST: "not on this host",
  NOT_VISIBLE: "not visible (another PID namespace)",
  PERMISSION_DENIED: "not readable (permission)",
  HOLDER_ERROR: "lookup failed",
  HOLDER_UNKNOWN: "not looked up yet",
};

function stamp(iso) {
  return iso ? clock(iso) + " (" + iso + ")" : "";
}

function facts(node) {
  const h = node.health || {};
  const holder = node.holder || {};
  const p = (holder.processes || [])[0] || {};
  return [
    ["name", "Name", node.name],
    ["host", "Host", node.host || "(not known)"],
    // A relay's node: the daemon it is registered with.
    node.source ? ["source", "Source", sourceOf(node)] : null,
    ["cluster", "Cluster", clusterOf(node)],
    ["port", "Distribution port", node.port],
    ["type", "Type", typeLabel(node) + " (" + node.nodeTypeRaw + ")"],
    ["protocol", "Protocol", node.protocol],
    ["versions", "Versions", node.lowestVersion + "–" + node.highestVersion],
    ["extra", "Extra", extraLabel(node.extra) || "(none)"],
    ["creation", "Creation", node.creation],
    ["registration", "Registration", node.registrationId + " (revision " + node.createRevision + ")"],
    ["peer", "Peer", node.peerAddress],
    ["registered", "Registered", stamp(node.registeredAt)],
    ["health", "Health", healthKey(node)],
    ["health-since", "Health since", stamp(h.since)],
    ["last-probe", "Last probe", stamp(h.lastProbe) || "(not probed yet)"],
    ["failures", "Failed probes in a row", h.consecutiveFailures || 0],
    ["last-error", "Last probe error", h.lastError || "(none)"],
    ["holder", "Holder", HOLDER_STATUS[holder.status] || holder.status || ""],
    ["holder-reason", "Holder detail", holder.reason || ""],
    ["holder-pid", "Holder pid", p.pid || ""],
    ["holder-user", "Holder user", p.user ? p.user + " (uid " + p.uid + ")" : ""],
    ["holder-command", "Holder command", p.commandLine || p.command || ""],
    ["holder-state", "Holder state", p.state || ""],
  ].filter(Boolean);
}

export class DetailsView {
  /** @param dialog the <dialog id="details">; @param log the EventLog; @param evict(node) */
  constructor(dialog, log, evict) {
    this.dialog = dialog;
    this.log = log;
    this.node = null;
    this.seq = 0;
    this.gone = false;
    this.enabled = true;
    this.note = "";
    this.staleOf = () => ""; // Set by the page: why a relay's node is only its last known one.
    dialog.querySelector("#details-close").addEventListener("click", () => dialog.close());
    dialog.querySelector("#details-evict").addEventListener("click", () => {
      if (this.node) evict(this.node);
    });
    dialog.addEventListener("close", () => {
      this.node = null;
      delete document.body.dataset.detailsLoaded;
    });
  }

  async open(node) {
    const seq = ++this.seq;
    this.node = node;
    this.gone = false;
    delete document.body.dataset.detailsLoaded;
    this.dialog.querySelector("#details-notice").replaceChildren();
    this.render(node, "");
    if (!this.dialog.open) this.dialog.showModal();
    const r = await api.node(node.name, clusterOf(node), sourceOf(node));
    if (seq !== this.seq || !this.dialog.open) return;
    if (r.ok && r.body.registrationId === node.registrationId) {
      this.node = r.body;
      this.render(r.body, "");
    } else if (r.ok) {
      this.render(node, "The name has a newer registration (" + r.body.registrationId +
        "); this is registration " + node.registrationId + " as it was last seen.");
    } else {
      this.gone = r.status === 404;
      this.render(node, this.gone ? "This registration is gone." : "Not refreshed: " + describeError(r));
    }
    document.body.dataset.detailsLoaded = "true";
  }

  /** The stream changed this node (health) or ended it. */
  refresh(node, gone) {
    if (!this.node || nodeKey(this.node) !== nodeKey(node)) return;
    if (this.node.registrationId !== node.registrationId) return;
    // Events carry the holder as of the event: a HEALTH_CHANGED may predate the holder we
    // read; take the one checked last.
    const mine = this.node.holder || {};
    const theirs = node.holder || {};
    const holder = (theirs.checkedAt || "") >= (mine.checkedAt || "") ? theirs : mine;
    const merged = Object.assign({}, node, { holder });
    this.node = merged;
    this.gone = gone;
    this.render(merged, gone ? "This registration is gone." : "");
  }

  setEnabled(enabled) {
    this.enabled = enabled;
    this.dialog.querySelector("#details-evict").disabled = !this.canEvict();
  }

  /** Its source's state changed (a relay): the stale note and the evict button follow. */
  restale() {
    if (this.node && this.dialog.open) this.render(this.node, this.note);
  }

  canEvict() {
    return this.enabled && !this.gone && !(this.node && this.staleOf(this.node));
  }

  render(node, note) {
    this.note = note;
    const stale = this.staleOf(node);
    this.dialog.querySelector("#details-title").textContent = fullName(node);
    const dl = this.dialog.querySelector("#details-facts");
    dl.replaceChildren(...facts(node).flatMap(([field, label, value]) => [
      el("dt", {}, label), el("dd", { dataset: { field } }, String(value)),
    ]));
    this.dialog.querySelector("#details-evict").disabled = !this.enabled || this.gone || stale !== "";
    const noteEl = this.dialog.querySelector("#details-note");
    const said = [note, stale ? stale + " (its source cannot be reached: not evictable now)" : ""]
      .filter(Boolean).join(" ");
    noteEl.textContent = said;
    noteEl.hidden = !said;
    const k = nodeKey(node);
    const mine = this.log.newest((ev) => eventKey(ev) === k, 20);
    this.dialog.querySelector("#details-events").replaceChildren(...mine.map((ev) => eventItem(ev, false)));
    this.dialog.querySelector("#details-no-events").hidden = mine.length !== 0;
  }

  notice(elem) {
    this.dialog.querySelector("#details-notice").replaceChildren(elem);
  }
}
