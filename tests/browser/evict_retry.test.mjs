// A failed eviction then a successful one from the same row: one notice, the newer, in place
// of the row; no second band, no empty band, nothing left behind once the notice is done.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { registerOk, row, evictFromRow, waitText, eventually, assertClean, startPage, stopPage }
  from "./support.mjs";

let daemon, browser, p;

before(async () => ({ daemon, browser, p } = await startPage()));

after(() => stopPage({ daemon, browser }));

const bands = () => p.page.locator("#rows tr.notice-row").evaluateAll((trs) =>
  trs.map((tr) => ({ key: tr.dataset.key, text: tr.textContent.trim() })));

test("a retried eviction leaves one notice and no empty band", async () => {
  const other = await registerOk(daemon.epmdPort, "neighbour", 27201);
  const target = await registerOk(daemon.epmdPort, "retried", 27202);
  await row(p.page, "retried").waitFor({ timeout: 2000 });
  await p.page.evaluate(() => sessionStorage.removeItem("epmdx.token"));
  await evictFromRow(p.page, "retried", { token: "not-the-token" });
  await p.page.locator("#rows tr.notice-row .action-notice.error").waitFor({ timeout: 3000 });
  assert.equal((await bands()).length, 1);

  await evictFromRow(p.page, "retried", { reason: "retry" });
  await p.page.locator("#rows tr.notice-row .action-notice.ok").waitFor({ timeout: 3000 });
  await row(p.page, "retried").waitFor({ state: "detached", timeout: 3000 });
  const after = await bands();
  assert.equal(after.length, 1, "one band: " + JSON.stringify(after));
  assert.match(after[0].text, /^Evicted retried/);
  assert.equal(await p.page.locator("#rows .action-notice.error").count(), 0, "the failure is replaced");

  // When the notice is done (15 s), its band goes with it.
  await eventually(async () => (await bands()).length === 0, 20000, "the band is gone");
  assert.equal(await row(p.page, "neighbour").count(), 1);
  assert.equal(await p.page.locator("#notice").isHidden(), true);
  other.socket.destroy();
  target.socket.destroy();
  await waitText(p.page, "#count", "0");
  assertClean(p, { allow: /status of 401 .*\/v1\/nodes\/retried/ });
});
