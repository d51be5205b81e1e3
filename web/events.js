// What happened: every event the page has seen, from the daemon's history (/v1/events, read
// once per fresh start) and from the stream, de-duplicated by revision (one event each),
// newest first. The events pane, the details view and the chart all read this one log.

import {
  el, clock, clusterOf, eventLabel, fullName, healthKey, nodeKey, reasonLabel, revCompare,
} from "./format.js";

const KEEP = 5000; // In memory; the chart reads them all, the pane shows the newest 200.
export const SHOWN = 200;

export class EventLog {
  constructor() {
    this.events = []; // newest first
    this.revisions = new Set();
  }

  /** Adds events in any order; returns how many were new. */
  add(events) {
    let added = 0;
    for (const ev of events) {
      if (!ev || this.revisions.has(ev.revision)) continue;
      this.revisions.add(ev.revision);
      this.events.push(ev);
      added++;
    }
    if (added === 0) return 0;
    this.events.sort((a, b) => revCompare(b.revision, a.revision));
    for (const gone of this.events.splice(KEEP)) this.revisions.delete(gone.revision);
    return added;
  }

  /** The newest events that pass `keep`, at most `limit`. */
  newest(keep, limit) {
    const out = [];
    for (const ev of this.events) {
      if (out.length >= limit) break;
      if (keep(ev)) out.push(ev);
    }
    return out;
  }
}

/** The name an event is about (a node's, or a hold's). */
export function eventSubject(ev) {
  return ev.node && ev.node.name ? ev.node : ev.hold || {};
}

export function eventKey(ev) {
  return nodeKey(eventSubject(ev));
}

/** One line of the events pane: time, what, who, why. */
export function eventItem(ev, showCluster) {
  const subject = eventSubject(ev);
  const reason = ev.type === "UNREGISTERED" ? reasonLabel(ev.reason)
    : ev.type === "HEALTH_CHANGED" ? (ev.node.health || {}).lastError || ""
      : ev.type === "HELD" ? holdLength(ev.hold) : "";
  const detail = ev.detail || (ev.hold && ev.type !== "HELD" ? ev.hold.reason : "");
  return el("li", {
    className: "event event-" + ev.type.toLowerCase() +
      (ev.type === "HEALTH_CHANGED" ? " now-" + healthKey(ev.node || {}) : ""),
    dataset: { type: ev.type, revision: ev.revision, name: subject.name || "",
      cluster: clusterOf(subject) },
  },
  el("time", { datetime: ev.time || "", title: (ev.time || "") + " · revision " + ev.revision },
    ev.time ? clock(ev.time) : ""),
  el("span", { className: "what" }, eventLabel(ev)),
  el("span", { className: "who" }, fullName(subject)),
  showCluster ? el("span", { className: "cluster-tag" }, clusterOf(subject)) : null,
  reason ? el("span", { className: "reason" }, reason) : null,
  ev.actor ? el("span", { className: "actor" }, "by " + ev.actor) : null,
  detail ? el("q", { className: "detail" }, detail) : null);
}

function holdLength(hold) {
  if (!hold || !hold.expiresAt || !hold.createdAt) return "";
  const s = Math.round((Date.parse(hold.expiresAt) - Date.parse(hold.createdAt)) / 1000);
  return "for " + s + " s";
}
