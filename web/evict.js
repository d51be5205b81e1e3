// The eviction dialog: which registration, why, and whether to keep the name reserved so a
// live node's automatic re-registration (OTP retries about 2 s after its epmd connection
// closes) is refused for a while. The result is reported where the eviction was asked for.

import { api, describeError, setToken, token } from "./api.js";
import { el, clusterOf, fullName, nodeKey, sourceOf } from "./format.js";

/** A result line put where the action happened; it fades after 15 s. */
export function actionNotice(text, ok) {
  const n = el("div", { className: "action-notice " + (ok ? "ok" : "error"),
    role: ok ? "status" : "alert" }, text);
  setTimeout(() => n.classList.add("fading"), 14000);
  setTimeout(() => n.remove(), 15000);
  return n;
}

export class EvictDialog {
  /** @param report(target, noticeElement): shows the result where the action was taken */
  constructor(dialog, report) {
    this.dialog = dialog;
    this.report = report;
    this.target = null;
    this.$ = (id) => dialog.querySelector("#" + id);
    this.$("evict-form").addEventListener("submit", (e) => this.confirm(e));
    this.$("evict-cancel").addEventListener("click", () => dialog.close());
    this.$("evict-forget").addEventListener("click", () => {
      setToken("");
      this.showTokenField();
    });
  }

  /** Disabled while the stream is down: the page cannot tell whether the node still exists. */
  setEnabled(enabled) {
    this.$("evict-confirm").disabled = !enabled;
  }

  /** @param origin where the user asked ("row" or "details"), handed back to report(). */
  open(node, origin) {
    // On a relay the node's source goes with it: the relay forwards to that daemon only.
    this.target = { name: node.name, cluster: clusterOf(node), source: sourceOf(node),
      registrationId: node.registrationId, full: fullName(node), key: nodeKey(node), origin };
    this.$("evict-name").textContent = fullName(node);
    this.$("evict-id").textContent = node.registrationId;
    this.$("evict-cluster").textContent = clusterOf(node);
    this.$("evict-source").textContent = sourceOf(node);
    this.$("evict-source-line").hidden = !node.source;
    this.$("evict-reason").value = "";
    this.$("evict-hold").value = "0";
    this.showTokenField();
    this.dialog.showModal();
    (token() ? this.$("evict-reason") : this.$("evict-token")).focus();
  }

  showTokenField() {
    const have = token() !== "";
    this.$("evict-token-row").hidden = have;
    this.$("evict-token-saved").hidden = !have;
    this.$("evict-token").required = !have;
    this.$("evict-token").value = "";
  }

  async confirm(event) {
    event.preventDefault();
    const target = this.target;
    if (!target) return;
    const typed = this.$("evict-token").value.trim();
    if (typed) setToken(typed);
    if (!token()) return;
    const hold = Number(this.$("evict-hold").value);
    const reason = this.$("evict-reason").value;
    this.dialog.close();
    const r = await api.evict(target, reason, hold);
    if (r.ok) {
      const held = r.body.hold ? "; the name is held for " + hold + " s (lift it under Held names)"
        : "; a live node registers again by itself about 2 s later";
      const cluster = (document.body.dataset.clusters === "many" ? ", cluster " + target.cluster : "") +
        (target.source ? ", source " + target.source : "");
      this.report(target, actionNotice("Evicted " + target.full + " (registration " +
        target.registrationId + cluster + ") at revision " + r.body.revision + held + ".", true));
    } else {
      if (r.status === 401) setToken(""); // A wrong token is not kept.
      this.report(target, actionNotice("Not evicted: " + describeError(r), false));
    }
  }
}
