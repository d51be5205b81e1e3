// The daemon's REST API as the page uses it. The token (when the daemon wants one) lives in
// this tab's sessionStorage only: it is never written into the page or the URL bar.

const TOKEN_KEY = "epmdx.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token()) h.Authorization = "Bearer " + token();
  return h;
}

/** The answer of a request: {ok, status, body}; a daemon (or relay) that is down gives status 0. */
async function call(path, init) {
  try {
    const res = await fetch(path, Object.assign({}, init, { headers: headers((init || {}).headers) }));
    const body = await res.json().catch(() => ({}));
    return { ok: res.ok, status: res.status, body };
  } catch (e) {
    return { ok: false, status: 0, body: { message: "the daemon did not answer (" + e.message + ")" } };
  }
}

/** "401 UNAUTHENTICATED — message", or why nothing answered. */
export function describeError(r) {
  if (r.status === 0) return r.body.message;
  return r.status + " " + (r.body.status || "") + " — " + (r.body.message || "no message");
}

export const api = {
  clusters: () => call("/v1/clusters"),
  nodes: () => call("/v1/nodes"),
  node: (name, cluster, source) =>
    call("/v1/nodes/" + encodeURIComponent(name) + "?cluster=" + encodeURIComponent(cluster) +
      (source ? "&source=" + encodeURIComponent(source) : "")),
  // A fleet relay's sources; asked only once the relay showed itself (a daemon answers 404,
  // which the browser would log as an error).
  sources: () => call("/v1/sources"),
  holds: () => call("/v1/holds"),
  events: (limit) => call("/v1/events?limit=" + limit),
  // On a relay the row's source goes along (a name may live on two sources), in the query
  // as the relay's REST selectors are, and in the body as EvictNodeRequest.source.
  evict: (target, reason, holdSeconds) =>
    call("/v1/nodes/" + encodeURIComponent(target.name) + (target.source
      ? "?" + new URLSearchParams({ cluster: target.cluster, source: target.source }).toString() : ""), {
      method: "DELETE",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ registrationId: target.registrationId, reason,
        cluster: target.cluster, holdSeconds }, target.source ? { source: target.source } : {})),
    }),
  lift: (hold, reason) =>
    call("/v1/holds/" + encodeURIComponent(hold.name) + "?cluster=" +
      encodeURIComponent(hold.cluster || "default") + "&reason=" + encodeURIComponent(reason) +
      (hold.source ? "&source=" + encodeURIComponent(hold.source) : ""), {
      method: "DELETE",
    }),
};

/** The watch stream's URL: EventSource cannot send headers, so the token rides along. */
export function watchUrl() {
  const params = new URLSearchParams({ initial: "true", heartbeat_ms: "2000" });
  if (document.body.dataset.needsToken === "true" && token()) params.set("access_token", token());
  return "/v1/watch?" + params.toString();
}
