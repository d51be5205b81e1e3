// What happened: every event the page has seen, from the daemon's history (/v1/events, read
// at each fresh start) and from the stream, de-duplicated by revision, kept oldest first
// (the stream appends). Where the page cannot know what happened (the stream was down and
// the history no longer reaches back, or the daemon restarted), a gap marker says so: the
// events pane shows it and the chart does not draw its line across it.

import {
  el, clock, clusterOf, eventLabel, healthKey, invisibles, nodeKey, reasonLabel, revCompare,
} from "./format.js";

const KEEP = 5000; // In memory; the chart reads them all, the pane shows the newest 200.
export const SHOWN = 200;

export class EventLog {
  constructor() {
    this.events = []; // oldest first; gaps are {gap: true, revision, time, from}
    this.ids = new Set();
    this.regs = new Map(); // registrationId -> {host, holderSeen}: for quiet holder events
    this.lastRevision = null; // the newest revision seen
  }

  /** Adds events in any order; returns how many were new. */
  add(events) {
    let added = 0;
    let sorted = true;
    for (const ev of events) {
      if (!ev || this.ids.has(ev.revision)) continue;
      this.ids.add(ev.revision);
      const last = this.events[this.events.length - 1];
      if (last && revCompare(last.revision, ev.revision) > 0) sorted = false;
      this.events.push(ev);
      if (sorted) this.note(ev);
      if (this.lastRevision == null || revCompare(ev.revision, this.lastRevision) > 0) {
        this.lastRevision = ev.revision;
      }
      added++;
    }
    if (!sorted) {
      this.sort();
      this.regs.clear();
      for (const ev of this.events) this.note(ev);
    }
    this.trim();
    return added;
  }

  /**
   * A holder found for the first time that changes nothing visible (the host stays) is
   * quiet: every node has one right after it registers, and thirty of them would push what
   * people look for out of the events pane. The details view still lists them.
   */
  note(ev) {
    if (ev.gap || !ev.node || !ev.node.registrationId) return;
    const id = ev.node.registrationId;
    const r = this.regs.get(id) || { host: undefined, holderSeen: false };
    if (ev.type === "HOLDER_CHANGED") {
      ev.quiet = !r.holderSeen && (r.host === undefined || r.host === (ev.node.host || ""));
      r.holderSeen = true;
    }
    r.host = ev.node.host || "";
    this.regs.set(id, r);
    if (ev.type === "UNREGISTERED") this.regs.delete(id);
  }

  /** Marks that what happened after `revision` (until the history's oldest) is unknown. */
  addGap(revision, fromMs) {
    const id = "gap:" + revision;
    if (this.ids.has(id)) return;
    this.ids.add(id);
    this.events.push({ gap: true, revision, time: new Date(fromMs).toISOString(), from: fromMs });
    this.sort();
  }

  sort() {
    // A gap sorts right after the event of its revision.
    this.events.sort((a, b) => revCompare(a.revision, b.revision) || (a.gap ? 1 : 0) - (b.gap ? 1 : 0));
  }

  trim() {
    if (this.events.length <= KEEP) return;
    for (const gone of this.events.splice(0, this.events.length - KEEP)) {
      this.ids.delete(gone.gap ? "gap:" + gone.revision : gone.revision);
    }
  }

  /** The newest entries (events and gaps) that pass `keep`, newest first, at most `limit`. */
  newest(keep, limit) {
    const out = [];
    for (let i = this.events.length - 1; i >= 0 && out.length < limit; i--) {
      if (keep(this.events[i])) out.push(this.events[i]);
    }
    return out;
  }
}

/** The name an event is about (a node's, or a hold's). */
export function eventSubject(ev) {
  return ev.node && ev.node.name ? ev.node : ev.hold || {};
}

export function eventKey(ev) {
  return ev.gap ? "" : nodeKey(eventSubject(ev));
}

/** One line of the events pane: time, what, who, why; or a gap. */
export function eventItem(ev, showCluster, showSource) {
  if (ev.gap) {
    return el("li", { className: "gap", dataset: { revision: ev.revision } },
      el("time", { datetime: ev.time }, clock(ev.time)),
      " The stream was down: what happened between then and the history the daemon still " +
      "keeps is not known (a daemon restart ends every registration without an event).");
  }
  const subject = eventSubject(ev);
  const reason = ev.type === "UNREGISTERED" ? reasonLabel(ev.reason)
    : ev.type === "HEALTH_CHANGED" ? (ev.node.health || {}).lastError || ""
      : ev.type === "HELD" ? holdLength(ev.hold) : "";
  const detail = ev.detail || (ev.hold && ev.type !== "HELD" ? ev.hold.reason : "");
  const hidden = invisibles(subject.name || "");
  return el("li", {
    className: "event event-" + ev.type.toLowerCase() +
      (ev.type === "HEALTH_CHANGED" ? " now-" + healthKey(ev.node || {}) : ""),
    dataset: { type: ev.type, revision: ev.revision, name: subject.name || "",
      cluster: clusterOf(subject), source: subject.source || "" },
  },
  el("time", { datetime: ev.time || "", title: (ev.time || "") + " · revision " + ev.revision },
    ev.time ? clock(ev.time) : ""),
  el("span", { className: "what" }, eventLabel(ev)),
  el("span", { className: "who" }, el("bdi", {}, subject.name || ""),
    subject.host ? "@" + subject.host : ""),
  hidden.length ? el("span", { className: "invisible-warning", role: "img",
    "aria-label": "contains invisible characters", title: hidden.join(" ") }, "⚠") : null,
  showCluster ? el("span", { className: "cluster-tag" }, clusterOf(subject)) : null,
  showSource && subject.source ? el("span", { className: "source-tag" }, subject.source) : null,
  helperTag(ev.node),
  reason ? el("span", { className: "reason" }, reason) : null,
  ev.actor ? el("span", { className: "actor" }, "by " + ev.actor) : null,
  detail ? el("q", { className: "detail" }, detail) : null);
}

/** A release's short-lived helper node (bin/demo rpc registers rpc-XXXX-demo for ~0.1 s):
 * say what it is, so a burst of them reads as "bin/demo rpc" and not as nodes that died. */
function helperTag(node) {
  const h = node && node.releaseHelper;
  if (!h) return null;
  return el("span", { className: "helper-tag", title: "a short-lived node that bin/" + h.target +
    " " + h.command + " starts to reach " + h.target }, "bin/" + h.target + " " + h.command + " helper");
}

function holdLength(hold) {
  if (!hold || !hold.expiresAt || !hold.createdAt) return "";
  const s = Math.round((Date.parse(hold.expiresAt) - Date.parse(hold.createdAt)) / 1000);
  return "for " + s + " s";
}
