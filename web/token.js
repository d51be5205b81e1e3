// The token form, in the page (never window.prompt): shown when the daemon refuses anonymous
// reads, or when the user opens it to act. A token is checked against the daemon before it
// is kept, so a typo is reported here and not as a broken page later.

import { api, describeError, setToken, token } from "./api.js";

export class TokenForm {
  /** @param accepted(): called after a token the daemon accepted was saved */
  constructor(panel, accepted) {
    this.panel = panel;
    this.accepted = accepted;
    this.$ = (id) => panel.querySelector("#" + id);
    this.$("token-form").addEventListener("submit", (e) => this.submit(e));
    this.$("token-cancel").addEventListener("click", () => this.hide());
  }

  show(why) {
    this.$("token-why").textContent = why;
    this.$("token-error").textContent = "";
    this.$("token-error").hidden = true;
    this.$("token-input").value = "";
    this.$("token-cancel").hidden = document.body.dataset.needsToken === "true";
    this.panel.hidden = false;
    this.$("token-input").focus();
  }

  hide() {
    this.panel.hidden = true;
  }

  async submit(event) {
    event.preventDefault();
    const typed = this.$("token-input").value.trim();
    if (!typed) return;
    const previous = token();
    setToken(typed);
    const r = await api.nodes();
    if (!r.ok) {
      setToken(previous);
      this.$("token-error").textContent = r.status === 401 || r.status === 403
        ? "The daemon did not accept this token: " + describeError(r)
        : "Could not check the token: " + describeError(r);
      this.$("token-error").hidden = false;
      return;
    }
    this.hide();
    this.accepted();
  }
}
