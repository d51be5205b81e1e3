// epmdx live nodes page. Every fact comes from the server: the initial state and every
// change arrive on one server-sent-events stream (/v1/watch); the only other request is
// the eviction (DELETE /v1/nodes/NAME). Nothing polls. The stream's event ids are registry
// revisions, so the browser's automatic reconnect resumes exactly where it stopped; when
// the server can no longer resume (history moved on, or the daemon restarted), it sends
// "resync" and the page starts over from a fresh initial state.
"use strict";

const state = {
  nodes: new Map(), // key(node) -> Node (canonical protobuf JSON)
  clusters: [], // The daemon's clusters (epmd ports, ListClusters), the default first.
  cluster: "", // The cluster shown; "" = all.
  revision: null,
  source: null,
  initialDone: false,
  filter: "",
};

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "epmdx.token";

function setConnection(kind, text) {
  const el = $("conn");
  el.className = "conn conn-" + kind;
  el.textContent = text;
  document.body.dataset.connection = kind;
}

function setRevision(rev) {
  state.revision = rev;
  $("revision").textContent = rev == null ? "" : "revision " + rev;
}

function notice(text, kind) {
  const el = $("notice");
  el.textContent = text;
  el.className = "notice " + (kind || "");
  el.hidden = !text;
}

// ---- Rendering ---------------------------------------------------------------------

function relativeTime(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return seconds + " s ago";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return minutes + " min ago";
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return hours + " h " + (minutes % 60) + " min ago";
  return Math.floor(hours / 24) + " days ago";
}

function typeLabel(node) {
  if (node.nodeType === "NODE_TYPE_NORMAL") return "normal";
  if (node.nodeType === "NODE_TYPE_HIDDEN") return "hidden";
  return "type " + node.nodeTypeRaw;
}

// The extra field is bytes (base64 in JSON): text when it is printable UTF-8, else hex.
function extraLabel(b64) {
  if (!b64) return "";
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    if (!/[\u0000-\u001f\u007f]/.test(text)) return JSON.stringify(text);
  } catch (e) { /* not UTF-8 */ }
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A name is unique within its cluster only.
function key(node) {
  return (node.cluster || "default") + "\u0000" + node.name;
}

function matches(node) {
  if (state.cluster && (node.cluster || "default") !== state.cluster) return false;
  const f = state.filter;
  if (!f) return true;
  return node.name.toLowerCase().includes(f) || String(node.port).includes(f) ||
    (node.peerAddress || "").toLowerCase().includes(f);
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function makeRow(node) {
  const tr = document.createElement("tr");
  tr.dataset.key = key(node);
  tr.dataset.registrationId = node.registrationId;
  cell(tr, node.name, "name");
  cell(tr, node.cluster || "default", "cluster");
  cell(tr, String(node.port), "num");
  cell(tr, typeLabel(node));
  cell(tr, node.lowestVersion + "–" + node.highestVersion);
  cell(tr, extraLabel(node.extra), "extra");
  cell(tr, node.peerAddress, "peer");
  const since = cell(tr, relativeTime(node.registeredAt), "since");
  since.dataset.registeredAt = node.registeredAt;
  since.title = node.registeredAt;
  cell(tr, node.registrationId, "num id");
  const actions = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "danger evict";
  button.textContent = "Evict";
  button.setAttribute("aria-label", "Evict " + node.name + " (cluster " + (node.cluster || "default") + ")");
  button.addEventListener("click", () => openEvict(key(node)));
  actions.appendChild(button);
  tr.appendChild(actions);
  tr.hidden = !matches(node);
  return tr;
}

function rowFor(k) {
  for (const tr of $("rows").children) {
    if (tr.dataset.key === k && !tr.classList.contains("removed")) return tr;
  }
  return null;
}

// The cluster selector: "All clusters" and each cluster with its node count.
function renderClusters() {
  const counts = new Map(state.clusters.map((c) => [c.name, 0]));
  for (const node of state.nodes.values()) {
    const c = node.cluster || "default";
    counts.set(c, (counts.get(c) || 0) + 1);
  }
  const select = $("cluster");
  const options = [["", "All clusters (" + state.nodes.size + ")"]];
  for (const [c, n] of counts) options.push([c, c + " (" + n + ")"]);
  select.replaceChildren(...options.map(([value, label]) => {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    return o;
  }));
  select.value = state.cluster;
  // The selected cluster's port and who may list and resolve its names.
  const info = state.clusters.find((c) => c.name === state.cluster);
  $("cluster-info").textContent = info
    ? "port " + info.port + (info.serving ? "" : " (closed)") + " · names from " +
      info.namesFrom + " · lookups from " + info.lookupsFrom
    : "";
  // One cluster (plain OTP usage): no selector, no column.
  document.body.dataset.clusters = counts.size > 1 ? "many" : "one";
}

function updateCounts() {
  const total = state.nodes.size;
  let shown = 0;
  for (const node of state.nodes.values()) if (matches(node)) shown++;
  $("count").textContent = String(total);
  $("count-label").textContent = total === 1 ? "node" : "nodes";
  $("shown").textContent = state.filter || state.cluster ? "(" + shown + " shown)" : "";
  $("empty").hidden = total !== 0;
  renderClusters();
}

function renderAll() {
  const rows = $("rows");
  rows.replaceChildren();
  // Newest registration first, as epmd lists them.
  const nodes = [...state.nodes.values()].sort(
    (a, b) => Number(b.createRevision) - Number(a.createRevision));
  for (const node of nodes) rows.appendChild(makeRow(node));
  updateCounts();
}

function addNode(node) {
  state.nodes.set(key(node), node);
  const old = rowFor(key(node));
  if (old) old.remove();
  const tr = makeRow(node);
  tr.classList.add("added");
  $("rows").prepend(tr);
  updateCounts();
}

// A live node's facts changed (its health): keep the newer copy, the row stays.
function updateNode(node) {
  const current = state.nodes.get(key(node));
  if (current && current.registrationId === node.registrationId) state.nodes.set(key(node), node);
}

function removeNode(node) {
  const current = state.nodes.get(key(node));
  if (!current || current.registrationId !== node.registrationId) return;
  state.nodes.delete(key(node));
  const tr = rowFor(key(node));
  if (tr) {
    tr.classList.add("removed");
    tr.querySelector("button.evict").disabled = true;
    setTimeout(() => tr.remove(), 1000);
  }
  updateCounts();
}

// ---- The stream --------------------------------------------------------------------

function connect(fresh) {
  if (state.source) state.source.close();
  state.initialDone = false;
  setConnection(fresh ? "connecting" : "resyncing", fresh ? "connecting…" : "resyncing…");
  const params = new URLSearchParams({ initial: "true" });
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (document.body.dataset.needsToken === "true" && token) params.set("access_token", token);
  const source = new EventSource("/v1/watch?" + params.toString());
  state.source = source;

  source.addEventListener("open", () => {
    if (state.initialDone) setConnection("live", "live");
  });
  source.addEventListener("initial", (e) => {
    const msg = JSON.parse(e.data);
    if (!state.initialDone && !state.receivingInitial) {
      state.nodes.clear();
      state.receivingInitial = true;
    }
    for (const node of msg.initialNodes || []) state.nodes.set(key(node), node);
    if (msg.initialStateComplete) {
      state.receivingInitial = false;
      state.initialDone = true;
      setRevision(msg.revision);
      renderAll();
      setConnection("live", "live");
    }
  });
  source.addEventListener("change", (e) => {
    const ev = JSON.parse(e.data);
    if (ev.type === "REGISTERED") addNode(ev.node);
    else if (ev.type === "UNREGISTERED") removeNode(ev.node);
    else if (ev.type === "HEALTH_CHANGED") updateNode(ev.node);
    // HELD / HOLD_LIFTED / HOLD_EXPIRED concern names, not live nodes: nothing to redraw.
    setRevision(ev.revision);
    setConnection("live", "live");
  });
  source.addEventListener("progress", (e) => {
    setRevision(JSON.parse(e.data).revision);
    setConnection("live", "live");
  });
  source.addEventListener("resync", () => {
    // The server cannot resume from our revision: start over from a fresh state.
    setConnection("resyncing", "resyncing…");
    source.close();
    setTimeout(() => connect(false), 200);
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused outright (e.g. 401 with --http-anonymous-read=false): ask for a token.
      checkAccess();
      return;
    }
    // The browser reconnects by itself, sending Last-Event-ID.
    setConnection("reconnecting", "reconnecting…");
  });
}

async function checkAccess() {
  try {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const res = await fetch("/v1/nodes", token ? { headers: { Authorization: "Bearer " + token } } : {});
    if (res.status === 401 || res.status === 403) {
      document.body.dataset.needsToken = "true";
      setConnection("unauthorized", "token needed");
      const t = prompt("This epmdx needs a token with the read scope to show its nodes:");
      if (t) sessionStorage.setItem(TOKEN_KEY, t.trim());
    }
  } catch (e) { /* the daemon is down: retry below */ }
  setConnection("reconnecting", "reconnecting…");
  setTimeout(() => connect(false), 1000);
}

// ---- Eviction ------------------------------------------------------------------------

let evictTarget = null;

function openEvict(k) {
  const node = state.nodes.get(k);
  if (!node) return;
  evictTarget = { name: node.name, cluster: node.cluster || "default",
    registrationId: node.registrationId };
  $("evict-name").textContent = node.name;
  $("evict-id").textContent = node.registrationId;
  $("evict-token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("evict-reason").value = "";
  $("evict-dialog").showModal();
  ($("evict-token").value ? $("evict-reason") : $("evict-token")).focus();
}

async function confirmEvict(event) {
  event.preventDefault();
  const target = evictTarget;
  const token = $("evict-token").value.trim();
  if (!target || !token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("evict-dialog").close();
  try {
    const res = await fetch("/v1/nodes/" + encodeURIComponent(target.name), {
      method: "DELETE",
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify({ registrationId: target.registrationId, reason: $("evict-reason").value,
        cluster: target.cluster }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.ok) {
      notice("Evicted " + target.name + " (registration " + target.registrationId +
        ") at revision " + body.revision + ".", "ok");
    } else {
      if (res.status === 401) sessionStorage.removeItem(TOKEN_KEY);
      notice("Not evicted: " + res.status + " " + (body.status || "") + " — " +
        (body.message || res.statusText), "error");
    }
  } catch (e) {
    notice("Not evicted: the daemon did not answer (" + e.message + ").", "error");
  }
}

// ---- Start ---------------------------------------------------------------------------

function tick() {
  for (const td of document.querySelectorAll("td.since")) {
    td.textContent = relativeTime(td.dataset.registeredAt);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("filter").addEventListener("input", (e) => {
    state.filter = e.target.value.trim().toLowerCase();
    for (const tr of $("rows").children) {
      const node = state.nodes.get(tr.dataset.key);
      tr.hidden = node ? !matches(node) : tr.hidden;
    }
    updateCounts();
  });
  $("cluster").addEventListener("change", (e) => {
    state.cluster = e.target.value;
    for (const tr of $("rows").children) {
      const node = state.nodes.get(tr.dataset.key);
      tr.hidden = node ? !matches(node) : tr.hidden;
    }
    updateCounts();
  });
  // The clusters are configuration: read once, so empty clusters are listed too.
  fetch("/v1/clusters").then((r) => (r.ok ? r.json() : { clusters: [] })).then((body) => {
    state.clusters = body.clusters || [];
    updateCounts();
  }).catch(() => {});
  $("evict-form").addEventListener("submit", confirmEvict);
  $("evict-cancel").addEventListener("click", () => $("evict-dialog").close());
  setInterval(tick, 1000); // Relative times only: no network.
  updateCounts();
  connect(true);
});
