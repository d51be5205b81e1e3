// A fleet relay's sources (epmdx-fleet): the epmdx daemons it follows, one chip each with
// its state and node count, and the words for a partial view. Only a relay has sources; on a
// daemon none of this is shown. The list is read from /v1/sources, again whenever the watch
// says that a source's state changed (an SSE `coverage` frame); the counts come from the
// table, so they follow every registration without another request.

import { el, clock } from "./format.js";

// What each state means for someone looking at the nodes (Source.state).
const MEANING = {
  LIVE: "followed: its nodes are current",
  STALE: "cannot be reached now: its nodes are the last known ones",
  UNAVAILABLE: "never reached, or it refused the relay: none of its nodes are known",
  GONE: "discovery no longer lists it: its nodes are the last known ones until they expire",
};

/** The state word the API uses (LIVE, STALE, UNAVAILABLE, GONE); UNKNOWN before an answer. */
export function stateOf(source) {
  return MEANING[source && source.state] ? source.state : "UNKNOWN";
}

/** A source in this state has only last known nodes: the relay cannot reach it now. */
export function isStaleState(state) {
  return state === "STALE" || state === "GONE";
}

/** "pod-b is STALE since 09:00:01: last known registration" (a stale row's title). */
export function staleTitle(name, source) {
  const state = stateOf(source);
  if (state === "UNKNOWN") return name + " cannot be reached: last known registration";
  const since = source.since ? " since " + clock(source.since) : "";
  return name + " is " + state + since + ": last known registration";
}

/**
 * "2 of 3 sources reachable: source pod-b (…) is STALE since …": the band over the nodes
 * when an answer misses sources (Coverage); "" when every source is reachable.
 */
export function coverageText(coverage) {
  const live = (coverage && coverage.live) || [];
  const unreachable = (coverage && coverage.unreachable) || [];
  if (!unreachable.length) return "";
  const warnings = coverage.warnings && coverage.warnings.length ? coverage.warnings
    : unreachable.map((n) => "source " + n + " cannot be reached");
  return live.length + " of " + (live.length + unreachable.length) + " sources reachable: " +
    warnings.join("; ");
}

function chipTitle(source) {
  const state = stateOf(source);
  const parts = [];
  if (source.lastError) parts.push(source.lastError);
  parts.push(source.address + ": " + state + (source.since ? " since " + clock(source.since) : "") +
    " (" + (MEANING[state] || "state not known yet") + ")");
  return parts.join(" — ");
}

export class SourcesStrip {
  /**
   * @param list the <ul> of chips; @param pick(name): a chip was clicked ("" = all again);
   * @param look(): someone points at or focuses a chip. A source's last error changes while
   * its state does not (a broken stream, then refused reconnects), and only state changes
   * are pushed: the page re-reads the sources then, so the tooltip is current when read.
   */
  constructor(list, pick, look) {
    this.list = list;
    this.pick = pick;
    list.addEventListener("pointerover", (e) => { if (e.target.closest(".source-chip")) look(); });
    list.addEventListener("focusin", () => look());
    this.sources = []; // ListSourcesResponse.sources, by name
    this.selected = "";
  }

  setAll(sources) {
    this.sources = [...sources].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name) {
    return this.sources.find((s) => s.name === name) || null;
  }

  names() {
    return this.sources.map((s) => s.name);
  }

  /**
   * Redraws the chips. @param counts Map name -> nodes the page holds (null before the first
   * list: then the relay's own count). Chips are rebuilt only when what they say changed,
   * so focus on one survives a redraw.
   */
  render(counts, selected) {
    this.selected = selected;
    const items = this.sources.map((s) => {
      const state = stateOf(s);
      const n = counts ? counts.get(s.name) || 0 : s.nodes || 0;
      const title = chipTitle(s);
      const pressed = s.name === selected ? "true" : "false";
      const key = [state, n, title, pressed].join("\u0000");
      const old = [...this.list.children].find((li) => li.dataset.source === s.name);
      if (old && old.dataset.sig === key) return old;
      return el("li", { dataset: { source: s.name, sig: key } },
        el("button", { type: "button", className: "source-chip state-" + state.toLowerCase(),
          title, "aria-pressed": pressed,
          "aria-label": s.name + ": " + state + ", " + n + (n === 1 ? " node" : " nodes") +
            (s.lastError ? " (" + s.lastError + ")" : "") +
            (pressed === "true" ? "; shown alone, press to show every source" : "; press to show it alone"),
          dataset: { source: s.name, state },
          onclick: () => this.pick(s.name === this.selected ? "" : s.name) },
        el("span", { className: "source-name" }, s.name),
        el("span", { className: "source-state" }, state),
        el("b", { className: "source-count" }, String(n))));
    });
    const same = items.length === this.list.children.length &&
      items.every((li, i) => this.list.children[i] === li);
    if (!same) this.list.replaceChildren(...items);
  }
}
