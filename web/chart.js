// A small SVG chart, drawn by hand (no charting library): live nodes over the last 30
// minutes as a step line, and registrations/unregistrations per minute as bars above and
// below a baseline. The line is worked out backwards from the current count through the
// events the page knows (the daemon's history plus the stream), so it reaches as far back
// as that history does; before the oldest known event it is not drawn (not guessed).

import { clock } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const WINDOW_MIN = 30;
const W = 600;
const LINE_TOP = 14;
const LINE_BOTTOM = 84;
const BARS_MID = 112;
const BARS_HALF = 18;
const LEFT = 34;
const RIGHT = 594;

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

/**
 * @param root the <svg id="chart">
 * @param events newest first (only the cluster shown)
 * @param liveNow the current number of live nodes (same cluster)
 * @param nowMs the chart's right edge
 * @param knownSinceMs since when the page knows every event (page open, or older history)
 */
export function drawChart(root, events, liveNow, nowMs, knownSinceMs) {
  const start = nowMs - WINDOW_MIN * 60000;
  const x = (t) => LEFT + ((t - start) / (nowMs - start)) * (RIGHT - LEFT);

  // Live nodes: step backwards from now.
  const points = [[nowMs, liveNow]];
  let count = liveNow;
  let oldest = nowMs;
  const perMinute = new Map(); // minute start (ms) -> [registered, unregistered]
  let lineDone = false; // Past a gap the count is not known: the line stops there.
  for (const ev of events) {
    const t = Date.parse(ev.time);
    if (isNaN(t)) continue;
    if (t < start) break;
    if (ev.gap) {
      if (!lineDone) points.push([t, count]);
      lineDone = true;
      continue;
    }
    const delta = ev.type === "REGISTERED" ? 1 : ev.type === "UNREGISTERED" ? -1 : 0;
    if (delta === 0) continue;
    const minute = Math.floor(t / 60000) * 60000;
    const bucket = perMinute.get(minute) || [0, 0];
    bucket[delta > 0 ? 0 : 1]++;
    perMinute.set(minute, bucket);
    if (lineDone) continue;
    points.push([t, count]);
    count = Math.max(0, count - delta);
    points.push([t, count]);
    oldest = t;
  }
  // Before the oldest event in the window the count stayed at `count`, as far back as the
  // page knows what happened (since it opened, or the oldest event of the history).
  if (!lineDone) points.push([Math.max(start, Math.min(knownSinceMs, oldest)), count]);
  points.reverse();

  const maxCount = Math.max(1, ...points.map((p) => p[1]));
  const y = (c) => LINE_BOTTOM - (c / maxCount) * (LINE_BOTTOM - LINE_TOP);
  const d = points.map((p, i) => (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1)).join(" ");

  let maxRate = 1;
  for (const [r, u] of perMinute.values()) maxRate = Math.max(maxRate, r, u);
  const slot = (RIGHT - LEFT) / WINDOW_MIN;
  const bars = [];
  for (const [minute, [r, u]] of perMinute) {
    const bx = x(minute) + 1;
    const bw = Math.max(2, slot / 2 - 1.5);
    const label = clock(minute).slice(0, 5) + ": " + r + " registered, " + u + " unregistered";
    if (r > 0) {
      const h = (r / maxRate) * BARS_HALF;
      bars.push(svg("rect", { class: "reg", x: bx.toFixed(1), y: (BARS_MID - h).toFixed(1),
        width: bw.toFixed(1), height: h.toFixed(1) }, svg("title", {}, label)));
    }
    if (u > 0) {
      const h = (u / maxRate) * BARS_HALF;
      bars.push(svg("rect", { class: "unreg", x: (bx + bw + 1).toFixed(1), y: BARS_MID,
        width: bw.toFixed(1), height: h.toFixed(1) }, svg("title", {}, label)));
    }
  }

  root.setAttribute("viewBox", "0 0 " + W + " 136");
  root.dataset.points = String(points.length);
  root.replaceChildren(
    svg("title", {}, "Live nodes (line) and registrations / unregistrations per minute (bars), last " +
      WINDOW_MIN + " minutes"),
    svg("line", { class: "axis", x1: LEFT, x2: RIGHT, y1: LINE_BOTTOM, y2: LINE_BOTTOM }),
    svg("line", { class: "axis", x1: LEFT, x2: RIGHT, y1: BARS_MID, y2: BARS_MID }),
    svg("text", { class: "label", x: LEFT - 4, y: LINE_TOP + 4, "text-anchor": "end" }, maxCount),
    svg("text", { class: "label", x: LEFT - 4, y: LINE_BOTTOM + 4, "text-anchor": "end" }, 0),
    svg("text", { class: "label", x: LEFT - 4, y: BARS_MID - 6, "text-anchor": "end" }, "+" + maxRate),
    svg("text", { class: "label", x: LEFT - 4, y: BARS_MID + 14, "text-anchor": "end" }, "−" + maxRate),
    svg("text", { class: "label", x: LEFT, y: 134 }, "−" + WINDOW_MIN + " min"),
    svg("text", { class: "label", x: RIGHT, y: 134, "text-anchor": "end" }, "now"),
    svg("path", { class: "live", d }, svg("title", {}, liveNow + " live now")),
    ...bars);
}
