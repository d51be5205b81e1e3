// Turning the API's canonical protobuf JSON into words for people. Pure functions: no DOM
// state, no network.

/** Creates an element: el("td", {className: "x"}, "text", child, ...). */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "className") node.className = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

/** "12 s", "3 min", "2 h 5 min", "4 days": a length of time in milliseconds. */
export function duration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return seconds + " s";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return minutes + " min";
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return hours + " h " + (minutes % 60) + " min";
  return Math.floor(hours / 24) + " days";
}

export function ago(iso, nowMs) {
  if (!iso) return "";
  return duration(nowMs - Date.parse(iso)) + " ago";
}

/** Local wall-clock time of an RFC 3339 timestamp, seconds precision. */
export function clock(isoOrMs) {
  const d = new Date(typeof isoOrMs === "number" ? isoOrMs : Date.parse(isoOrMs));
  if (isNaN(d)) return "";
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit",
    hour12: false });
}

export function typeKey(node) {
  if (node.nodeType === "NODE_TYPE_NORMAL") return "normal";
  if (node.nodeType === "NODE_TYPE_HIDDEN") return "hidden";
  return "other";
}

export function typeLabel(node) {
  const k = typeKey(node);
  return k === "other" ? "type " + node.nodeTypeRaw : k;
}

export function healthKey(node) {
  const s = (node.health || {}).status;
  if (s === "ALIVE") return "alive";
  if (s === "UNRESPONSIVE") return "unresponsive";
  return "unknown";
}

/** name@host, as Erlang users know a node; the bare name when the host is not known. */
export function fullName(node) {
  return node.host ? node.name + "@" + node.host : node.name;
}

export function clusterOf(x) {
  return x.cluster || "default";
}

/** The epmdx daemon a fleet relay has the node from; "" on a daemon's own API. */
export function sourceOf(x) {
  return x.source || "";
}

/**
 * A name is unique within its cluster only, and on a relay within its source too. A daemon's
 * nodes have no source: their keys are what they always were.
 */
export function nodeKey(x) {
  return (x.source ? x.source + "\u0000" : "") + clusterOf(x) + "\u0000" + x.name;
}

const REASONS = {
  CONNECTION_CLOSED: "connection closed",
  STOPPED: "stopped (STOP_REQ)",
  KILLED: "killed (KILL_REQ)",
  EVICTED: "evicted",
  SHUTDOWN: "daemon shut down",
  TAKEN_OVER: "taken over by a new registration",
  AUTO_EVICTED: "evicted automatically (unresponsive)",
  SOURCE_GONE: "its source left the fleet",
  SOURCE_RESYNCED: "gone when its source was listed again",
};

export function reasonLabel(reason) {
  return REASONS[reason] || (reason ? reason.toLowerCase() : "");
}

const EVENT_LABELS = {
  REGISTERED: "registered",
  UNREGISTERED: "unregistered",
  HELD: "name held",
  HOLD_LIFTED: "hold lifted",
  HOLD_EXPIRED: "hold expired",
  HEALTH_CHANGED: "health",
  HOLDER_CHANGED: "holder",
};

export function eventLabel(ev) {
  if (ev.type === "HEALTH_CHANGED") return "now " + healthKey(ev.node || {});
  if (ev.type === "HOLDER_CHANGED") return "held by " + holderLabel((ev.node || {}).holder);
  return EVENT_LABELS[ev.type] || ev.type;
}

/** "pid 4242 beam.smp (sleeping)", or why the holder is not known. */
export function holderLabel(holder) {
  const h = holder || {};
  const p = (h.processes || [])[0];
  if (h.status === "FOUND" && p) return "pid " + p.pid + " " + (p.command || "") + (p.state ? " (" + p.state + ")" : "");
  return (h.status || "HOLDER_UNKNOWN").toLowerCase().replace(/_/g, " ");
}

/** The extra field is bytes (base64 in JSON): text when printable UTF-8, else hex. */
export function extraLabel(b64) {
  if (!b64) return "";
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    if (!/[\u0000-\u001f\u007f]/.test(text)) return JSON.stringify(text);
  } catch (e) { /* not UTF-8 */ }
  return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Revisions are uint64 as decimal JSON strings: compared exactly, without BigInt. */
export function revCompare(a, b) {
  a = a || "0";
  b = b || "0";
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The invisible characters in a name, as "U+202E" strings: controls, bidirectional
 * overrides and zero-width characters can make two names look alike or text run backwards.
 * The page isolates every name (CSS unicode-bidi) and flags these.
 */
export function invisibles(text) {
  const found = [];
  for (const ch of text) {
    if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(ch)) {
      found.push("U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0"));
    }
  }
  return found;
}
