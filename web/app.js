// epmdx live nodes page: the wiring. Every fact comes from the daemon: the nodes and every
// change arrive on one server-sent-events stream (stream.js); the held names and the recent
// history are read once per fresh start; the details view reads one node; actions are
// DELETEs. Nothing polls. Each part of the page is its own module:
//   table.js (nodes), holds.js, events.js (what happened), chart.js, details.js,
//   evict.js (dialog + notices), token.js (form), theme.js, api.js, format.js,
//   sources.js (a fleet relay's sources).
//
// The same page is served by a daemon and by a fleet relay (epmdx-fleet). The relay shows
// itself (its clusters and answers name their source, its watch sends `coverage` frames);
// then, and only then, the page asks /v1/sources (a daemon answers 404) and turns fleet mode
// on: body[data-fleet], the Source column, the strip of sources, the source filter, and
// stale rows for the sources it cannot reach.

import { api, describeError, token } from "./api.js";
import { drawChart } from "./chart.js";
import { DetailsView } from "./details.js";
import { EventLog, SHOWN, eventItem, eventSubject } from "./events.js";
import { EvictDialog, actionNotice } from "./evict.js";
import {
  clock, clusterOf, duration, fullName, healthKey, revCompare, sourceOf, typeKey,
} from "./format.js";
import { HoldsPanel } from "./holds.js";
import { Stream } from "./stream.js";
import { SourcesStrip, coverageText, isStaleState, staleTitle } from "./sources.js";
import { NodeTable, PAGE } from "./table.js";
import { setupTheme } from "./theme.js";
import { TokenForm } from "./token.js";

const $ = (id) => document.getElementById(id);

const state = {
  clusters: [], // ListClusters: the daemon's clusters, the default first
  cluster: "", // "" = all
  fleet: false, // a fleet relay: /v1/sources answered
  source: "", // "" = all (a relay only)
  coverage: null, // the relay's last Coverage: which sources its view covers
  type: "",
  health: "",
  text: "",
  everLive: false,
  known: false, // a first initial state arrived: until then no count is true, not even 0
  staleSince: null, // ms: when the stream stopped being live
  openedAt: Date.now(),
};

const log = new EventLog();
let table, holds, details, evictDialog, tokenForm, stream, strip;

// ---- Filters and counts ------------------------------------------------------------

function inCluster(x) {
  return !state.cluster || clusterOf(x) === state.cluster;
}

/** In the source shown; something whose source is not known (a hold) shows under each. */
function inSource(x) {
  return !state.source || !x.source || x.source === state.source;
}

function inScope(x) {
  return inCluster(x) && inSource(x);
}

function matches(node) {
  if (!inScope(node)) return false;
  if (state.type && typeKey(node) !== state.type) return false;
  if (state.health && healthKey(node) !== state.health) return false;
  if (!state.text) return true;
  return fullName(node).toLowerCase().includes(state.text) ||
    String(node.port).includes(state.text) ||
    (node.peerAddress || "").toLowerCase().includes(state.text) ||
    sourceOf(node).toLowerCase().includes(state.text);
}

function applyFilters() {
  table.setFilter(matches);
  holds.setFilter(inScope);
  schedule();
}

/** Until the first list: what the page is waiting for, never a count it does not know. */
function renderUnknown() {
  const needsToken = state.connection === "unauthorized";
  $("count").textContent = "–";
  $("count-label").textContent = needsToken ? "nodes: token needed" : "nodes: loading…";
  $("shown").textContent = "";
  for (const k of ["normal", "hidden", "alive", "unresponsive", "unknown", "holds"]) {
    $("count-" + k).textContent = "–";
  }
  $("empty").hidden = false;
  $("empty").textContent = needsToken
    ? "The nodes are not shown until a token with the read scope is given (above)."
    : "Loading the nodes…";
}

function renderCounts() {
  document.body.dataset.known = state.known ? "true" : "false";
  if (!state.known) {
    renderUnknown();
    renderClusters(new Map(state.clusters.map((x) => [x.name, null])), null);
    renderSources(null, null);
    return;
  }
  const c = { total: 0, shown: 0, normal: 0, hidden: 0, alive: 0, unresponsive: 0, unknown: 0 };
  const perCluster = new Map(state.clusters.map((x) => [x.name, 0]));
  const perSource = new Map(strip.names().map((n) => [n, 0]));
  const nodes = table.nodes();
  for (const node of nodes) {
    perCluster.set(clusterOf(node), (perCluster.get(clusterOf(node)) || 0) + 1);
    if (node.source) perSource.set(node.source, (perSource.get(node.source) || 0) + 1);
    if (!inScope(node)) continue;
    c.total++;
    if (matches(node)) c.shown++;
    const t = typeKey(node);
    if (t !== "other") c[t]++;
    c[healthKey(node)]++;
  }
  $("count").textContent = String(c.total);
  $("count-label").textContent = c.total === 1 ? "node" : "nodes";
  const filtered = state.text || state.type || state.health;
  $("shown").textContent = filtered ? "(" + c.shown + " shown)" : "";
  for (const k of ["normal", "hidden", "alive", "unresponsive", "unknown"]) {
    $("count-" + k).textContent = String(c[k]);
  }
  $("count-holds").textContent = String(holds.count());
  document.body.classList.toggle("has-unresponsive", c.unresponsive > 0);
  $("empty").hidden = c.total !== 0;
  $("empty").textContent = "No node is registered" +
    (state.cluster ? " in cluster " + state.cluster : "") +
    (state.source ? " on source " + state.source : "") + ".";
  renderClusters(perCluster, nodes.length);
  renderSources(perSource, nodes.length);
}

/** A select's options as [[value, label]], rebuilt only when they changed. */
function setOptions(select, options, value) {
  const same = select.options.length === options.length &&
    options.every(([v, l], i) => select.options[i].value === v && select.options[i].textContent === l);
  if (!same) {
    select.replaceChildren(...options.map(([v, label]) => {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = label;
      return o;
    }));
  }
  select.value = value;
}

// The cluster selector: "All clusters" and each cluster with its node count.
function renderClusters(perCluster, total) {
  const select = $("cluster");
  // Counts only once they are known (null: not yet).
  const counted = (label, n) => (n == null ? label : label + " (" + n + ")");
  const options = [["", counted("All clusters", total)]];
  for (const [name, n] of perCluster) options.push([name, counted(name, n)]);
  setOptions(select, options, state.cluster);
  // On a relay every source has its own cluster of that name: its port only for one source.
  const info = state.clusters.find((x) => x.name === state.cluster &&
    (!x.source || x.source === state.source));
  $("cluster-info").textContent = info
    ? "port " + info.port + (info.serving ? "" : " (closed)") + " · names from " +
      info.namesFrom + " · lookups from " + info.lookupsFrom
    : "";
  // One cluster (plain OTP usage): no selector, no column.
  document.body.dataset.clusters = perCluster.size > 1 ? "many" : "one";
}

// ---- A fleet relay's sources --------------------------------------------------------

// The source selector ("All sources (5)", "pod-a (3)") and the strip of chips; counts are
// the nodes the page holds (null: not known yet).
function renderSources(perSource, total) {
  if (!state.fleet) return;
  const counted = (label, n) => (n == null ? label : label + " (" + n + ")");
  const names = perSource ? [...perSource.keys()] : strip.names();
  const options = [["", counted("All sources", total)]];
  for (const name of names) options.push([name, counted(name, perSource ? perSource.get(name) : null)]);
  setOptions($("source"), options, state.source);
  strip.render(state.known ? perSource : null, state.source);
}

function setSource(name) {
  state.source = name;
  applyFilters();
}

/** Why a node is only its last known registration: its source is STALE or GONE now. */
function staleOf(node) {
  if (!node.source) return node.stale ? "last known registration" : "";
  const src = strip.get(node.source);
  if (src) return isStaleState(src.state) ? staleTitle(node.source, src) : "";
  return node.stale ? staleTitle(node.source, null) : "";
}

/** The band over the nodes while the relay's view misses sources. */
function renderCoverage() {
  const text = state.coverage ? coverageText(state.coverage) : "";
  $("coverage").hidden = !text;
  $("coverage").textContent = text;
  document.body.dataset.partial = text ? "true" : "false";
}

let sourcesAsked = 0; // Only the newest answer counts: an older one may arrive last.
let probing = false;
/** Reads /v1/sources: on a relay (which showed itself) it turns fleet mode on, then keeps
 * the strip and the stale rows current. */
async function loadSources() {
  const asked = ++sourcesAsked;
  const r = await api.sources();
  if (asked !== sourcesAsked || !r.ok) return r;
  if (!state.fleet) {
    state.fleet = true;
    document.body.dataset.fleet = "true";
    $("filter").placeholder = "name, host, port or source";
  }
  strip.setAll(r.body.sources || []);
  table.restale();
  details.restale();
  schedule();
  return r;
}

/** The relay showed itself (a source named, a coverage): ask it once for its sources. */
function relayHint() {
  if (state.fleet || probing) return;
  probing = true;
  loadSources().finally(() => { probing = false; });
}

// Pointing at the chips re-reads the sources (their last errors): at most once every 2 s,
// and a look within 2 s of the last read gets one read when they are up, never none.
let lookedAt = 0;
let lookPending = false;
function lookAtSources() {
  if (!state.fleet || lookPending) return;
  lookPending = true;
  setTimeout(() => {
    lookPending = false;
    lookedAt = Date.now();
    loadSources();
  }, Math.max(0, 2000 - (Date.now() - lookedAt)));
}

function onCoverage(coverage) {
  state.coverage = coverage;
  renderCoverage();
  // A source's state changed: the strip and the rows follow (a probe still in flight may
  // predate the change, so ask again: only the newest answer is applied).
  if (state.fleet || probing) loadSources();
  else relayHint();
}

/** Events of the cluster (and source) shown; gaps concern every cluster. */
function eventShown(ev) {
  return ev.gap || inScope(eventSubject(ev));
}

/** The events pane leaves out quiet holder events (see EventLog.note). */
function eventInPane(ev) {
  return !ev.quiet && eventShown(ev);
}

// Items are kept by revision and reused: a burst of changes builds only the new ones.
let eventItems = new Map();
let eventItemsMany = ""; // What the items show (cluster and source tags): rebuilt when it changes.
function renderEvents() {
  const shown = log.newest(eventInPane, SHOWN);
  const many = document.body.dataset.clusters === "many" && !state.cluster;
  const sources = state.fleet && !state.source;
  const look = many + "/" + sources;
  if (look !== eventItemsMany) eventItems = new Map();
  eventItemsMany = look;
  const next = new Map();
  const items = shown.map((ev) => {
    const id = (ev.gap ? "gap:" : "") + ev.revision;
    const li = eventItems.get(id) || eventItem(ev, many, sources);
    next.set(id, li);
    return li;
  });
  eventItems = next;
  $("events-list").replaceChildren(...items);
  $("events-empty").hidden = shown.length !== 0;
}

function renderChart() {
  const events = log.newest(eventShown, Infinity);
  const live = table.nodes().filter(inScope).length;
  const oldest = log.events.length ? Date.parse(log.events[0].time) : Infinity;
  drawChart($("chart"), events, live, stalledNow(), Math.min(state.openedAt, oldest));
}

// Counts, events and chart are redrawn at most every 50 ms, however fast changes come.
let scheduled = false;
function schedule() {
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    renderCounts();
    renderEvents();
    renderChart();
  }, 50);
}

// ---- Connection state: live, or honestly stale -------------------------------------

const CONN_TEXT = {
  connecting: "connecting…", live: "live", reconnecting: "reconnecting…",
  resyncing: "resyncing…", unauthorized: "token needed",
};

/** Now, or the moment the stream stopped: stale data is shown as of then. */
function stalledNow() {
  return state.staleSince == null ? Date.now() : state.staleSince;
}

function setConnection(kind) {
  if (state.connection === kind) return; // Every frame says "live": only changes matter.
  state.connection = kind;
  const el = $("conn");
  el.className = "conn conn-" + kind;
  el.textContent = CONN_TEXT[kind] || kind;
  document.body.dataset.connection = kind;
  const live = kind === "live";
  if (live) {
    state.everLive = true;
    state.staleSince = null;
  } else if (state.everLive && state.staleSince == null) {
    state.staleSince = Date.now();
  }
  const stale = !live && state.staleSince != null;
  if ((document.body.dataset.stale === "true") !== stale) {
    document.body.dataset.stale = stale ? "true" : "false";
    renderBanner();
    table.tick(stalledNow());
  }
  table.setEnabled(live);
  holds.setEnabled(live);
  details.setEnabled(live);
  evictDialog.setEnabled(live);
}

function renderBanner() {
  const banner = $("stale-banner");
  banner.hidden = state.staleSince == null;
  if (state.staleSince == null) return;
  const what = state.fleet ? "relay" : "daemon";
  banner.textContent = "The connection to the " + what + " was lost at " + clock(state.staleSince) +
    " (" + duration(Date.now() - state.staleSince) + " ago). Below is what was known then: " +
    "the nodes may be gone (a daemon restart ends every registration). Actions are disabled " +
    "until the page is live again; it reconnects by itself.";
}

function setRevision(rev) {
  state.revision = rev;
  $("revision").textContent = rev == null ? "" : "revision " + rev;
}

// ---- The stream --------------------------------------------------------------------

function onInitial(nodes, revision) {
  const before = state.revision; // What the page knew up to, if it knew anything.
  const downSince = state.staleSince;
  state.known = true;
  table.setAll(nodes);
  setRevision(revision);
  loadSideState(before, downSince);
  schedule();
}

function onChange(ev) {
  log.add([ev]);
  switch (ev.type) {
    case "REGISTERED":
      table.add(ev.node);
      break;
    case "UNREGISTERED":
      table.remove(ev.node);
      details.refresh(ev.node, true);
      break;
    case "HEALTH_CHANGED":
    case "HOLDER_CHANGED": // Its host may change with it (name@host from -name/-sname).
      table.update(ev.node);
      details.refresh(ev.node, false);
      break;
    case "HELD":
      holds.put(ev.hold);
      break;
    case "HOLD_LIFTED":
    case "HOLD_EXPIRED":
      holds.drop(ev.hold);
      break;
  }
  setRevision(ev.revision);
  schedule();
}

/**
 * Held names and the history, read once per fresh initial state. After an interruption,
 * a gap is marked unless the history reaches back to what the page last knew.
 */
async function loadSideState(before, downSince) {
  const [h, e] = await Promise.all([api.holds(), api.events(1000)]);
  if (e.ok) {
    const events = e.body.events || [];
    log.add(events);
    if (before != null) {
      const next = (BigInt(before) + 1n).toString();
      const reaches = events.length ? revCompare(events[0].revision, next) <= 0
        : revCompare(e.body.revision, before) <= 0;
      if (!reaches) log.addGap(before, downSince == null ? Date.now() : downSince);
    }
  } else if (before != null) {
    log.addGap(before, downSince == null ? Date.now() : downSince);
  }
  if (h.ok) {
    holds.setAll(h.body.holds || []);
    // Hold events the stream delivered after the list was made still apply, in order.
    const later = log.newest((ev) => ev.hold && revCompare(ev.revision, h.body.revision) > 0, Infinity);
    for (const ev of later.reverse()) {
      if (ev.type === "HELD") holds.put(ev.hold);
      else holds.drop(ev.hold);
    }
  }
  schedule();
}

async function checkAccess() {
  const r = await api.nodes();
  if (r.status === 401 || r.status === 403) {
    askForToken();
    return;
  }
  if (r.ok && r.body.coverage) relayHint();
  setTimeout(() => stream.connect(false), 1000);
}

function askForToken() {
  document.body.dataset.needsToken = "true";
  setConnection("unauthorized");
  schedule(); // "token needed" where a count would be, until the list comes.
  tokenForm.show(token()
    ? "The saved token was not accepted. This epmdx needs a token with the read scope to show its nodes."
    : "This epmdx needs a token with the read scope to show its nodes.");
}

// ---- Actions: notices go where the action was taken ---------------------------------

/** Calls `gone` once `notice` has left `box` (it removes itself after 15 s, or is replaced). */
function whenGone(notice, box, gone) {
  new MutationObserver((_, observer) => {
    if (notice.parentNode !== box) {
      observer.disconnect();
      if (!box.firstChild) gone();
    }
  }).observe(box, { childList: true });
}

function reportEviction(target, notice) {
  // Focus goes to the answer (the button that was pressed may be gone or disabled).
  notice.tabIndex = -1;
  if (target.origin === "details" && $("details").open) {
    details.notice(notice);
    notice.focus();
    return;
  }
  // The row as it is now: redrawn since (health), or fading out after the eviction.
  const tr = table.rowOf(target.key);
  if (tr) {
    // One answer per row: a newer one (a retry after a failure) takes the older one's place,
    // and the band goes with its notice, never left empty.
    for (const old of $("rows").querySelectorAll("tr.notice-row")) {
      if (old.dataset.key === target.key) old.remove();
    }
    const row = document.createElement("tr");
    row.className = "notice-row";
    row.dataset.key = target.key;
    const td = document.createElement("td");
    td.colSpan = 10;
    td.append(notice);
    row.append(td);
    tr.before(row);
    whenGone(notice, td, () => row.remove());
    row.scrollIntoView({ block: "nearest" });
    notice.focus({ preventScroll: true });
    return;
  }
  $("notice").replaceChildren(notice);
  $("notice").hidden = false;
  whenGone(notice, $("notice"), () => { $("notice").hidden = true; });
  $("notice").scrollIntoView({ block: "nearest" });
  notice.focus({ preventScroll: true });
}

function openEvict(node, origin) {
  evictDialog.open(node, origin);
}

async function liftHold(hold, li) {
  if (!token()) {
    tokenForm.show("Lifting a hold needs a token with the evict scope.");
    return;
  }
  const r = await api.lift(hold, "lifted from the page");
  const which = hold.name + (document.body.dataset.clusters === "many"
    ? " (cluster " + clusterOf(hold) + ")" : "") + (hold.source ? " on " + hold.source : "");
  const notice = actionNotice(r.ok
    ? "Lifted the hold on " + which + ": the name can register again."
    : "Not lifted: " + describeError(r), r.ok);
  notice.tabIndex = -1;
  if (!r.ok && li.isConnected) li.append(notice);
  else $("holds-notice").replaceChildren(notice);
  notice.focus();
}

// The clusters and the host are configuration: read once, so empty clusters are listed.
async function loadClusters() {
  const r = await api.clusters();
  if (!r.ok) return r;
  state.clusters = r.body.clusters || [];
  if (state.clusters.some((x) => x.source)) relayHint();
  if (r.body.host) {
    $("host").textContent = r.body.host;
    $("host-line").hidden = false;
    document.title = "epmdx — " + r.body.host;
  }
  schedule();
  return r;
}

/** The first request tells whether reads need a token: then the form, not a failing stream. */
async function start() {
  const r = await loadClusters();
  if (r.status === 401 || r.status === 403) {
    askForToken();
    return;
  }
  stream.connect(true);
}

/** "Showing 300 of 15,000": the table renders a page of rows; the rest is a click away. */
function renderMore() {
  const more = table.matched - table.shown.length;
  $("more").hidden = more <= 0;
  $("more-text").textContent = "Showing " + table.shown.length.toLocaleString() + " of " +
    table.matched.toLocaleString() + " (sort or filter to find the rest).";
  $("show-more").textContent = "Show " + Math.min(more, PAGE).toLocaleString() + " more";
}

// ---- Start ---------------------------------------------------------------------------

function tick() {
  const now = stalledNow();
  table.tick(now);
  holds.tick(Date.now());
  if (state.staleSince != null) renderBanner();
}

document.addEventListener("DOMContentLoaded", () => {
  table = new NodeTable($("rows"), [...document.querySelectorAll("#nodes th[data-sort]")], {
    details: (k) => {
      const node = table.node(k);
      if (node) details.open(node);
    },
    evict: (k) => {
      const node = table.node(k);
      if (node) openEvict(node, "row");
    },
    rendered: renderMore,
  });
  table.now = stalledNow;
  table.staleOf = staleOf;
  strip = new SourcesStrip($("sources-list"), (name) => setSource(name), lookAtSources);
  holds = new HoldsPanel($("holds-list"), $("holds-empty"), liftHold);
  details = new DetailsView($("details"), log, (node) => openEvict(node, "details"));
  details.staleOf = staleOf;
  evictDialog = new EvictDialog($("evict-dialog"), reportEviction);
  tokenForm = new TokenForm($("token-panel"), start);
  stream = new Stream({
    initial: onInitial,
    change: onChange,
    progress: setRevision,
    state: setConnection,
    refused: checkAccess,
    coverage: onCoverage,
  });
  setupTheme($("theme"));
  $("show-more").addEventListener("click", () => table.showMore());

  $("filter").addEventListener("input", (e) => {
    state.text = e.target.value.trim().toLowerCase();
    applyFilters();
  });
  $("type-filter").addEventListener("change", (e) => {
    state.type = e.target.value;
    applyFilters();
  });
  $("health-filter").addEventListener("change", (e) => {
    state.health = e.target.value;
    applyFilters();
  });
  $("cluster").addEventListener("change", (e) => {
    state.cluster = e.target.value;
    applyFilters();
  });
  $("source").addEventListener("change", (e) => setSource(e.target.value));
  $("token-button").addEventListener("click", () => tokenForm.show(
    "A token with the evict scope lets you evict names and lift holds from this page."));
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !e.target.closest("input, select, textarea, dialog")) {
      e.preventDefault();
      $("filter").focus();
    }
  });
  setInterval(tick, 1000); // Ages and remaining times only: no network.
  setInterval(schedule, 15000); // The chart's time axis moves on.
  setConnection("connecting");
  schedule();
  start();
});
