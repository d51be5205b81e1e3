// Eviction from the page: the name is free on the wire at once; a wrong token gets the
// server's answer as an error notice and changes nothing.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { register, registerOk, row, evictFromRow, waitText, assertClean, startPage, stopPage } from "./support.mjs";

let daemon, browser, p;

before(async () => ({ daemon, browser, p } = await startPage()));

after(() => stopPage({ daemon, browser }));

test("a wrong token gets the server's answer and changes nothing", async () => {
  const keeper = await registerOk(daemon.epmdPort, "keeper", 26001);
  await row(p.page, "keeper").waitFor({ timeout: 2000 });
  await p.page.evaluate(() => sessionStorage.removeItem("epmdx.token"));
  await row(p.page, "keeper").locator("button.evict").click();
  await p.page.waitForSelector("#evict-dialog[open]");
  await p.page.fill("#evict-token", "not-the-token");
  await p.page.click("#evict-confirm");
  const err = p.page.locator(".action-notice.error");
  await err.first().waitFor({ timeout: 3000 });
  assert.match(await err.first().textContent(), /401 UNAUTHENTICATED/);
  assert.equal(await row(p.page, "keeper").count(), 1);
  if (await p.page.locator("#evict-dialog[open]").count()) await p.page.click("#evict-cancel");
  await p.page.evaluate(() => sessionStorage.removeItem("epmdx.token"));
  keeper.socket.destroy();
  await waitText(p.page, "#count", "0");
});

test("evicting from the page frees the name on the wire", async () => {
  const stuck = await registerOk(daemon.epmdPort, "stuck", 26002);
  const closed = new Promise((r) => stuck.socket.once("close", r));
  await row(p.page, "stuck").waitFor({ timeout: 2000 });
  const t0 = Date.now();
  await evictFromRow(p.page, "stuck", { reason: "browser test" });
  await row(p.page, "stuck").waitFor({ state: "detached", timeout: 2500 });
  await closed; // epmdx closed the node's connection.
  const again = await register(daemon.epmdPort, "stuck", 26003);
  assert.equal(again.result, 0, "the name is free again");
  console.log("evict: the name was free on the wire " + (Date.now() - t0) + " ms after confirming");
  assert.match(await p.page.locator(".action-notice.ok").first().textContent(), /Evicted stuck/);
  assert.equal(await p.page.evaluate(() => sessionStorage.getItem("epmdx.token")), "browser-admin-token-0123456789",
    "the token is kept for the session");
  again.socket.destroy();
  await waitText(p.page, "#count", "0");
  // The only error: the refused request of the wrong-token test.
  assertClean(p, { allow: /status of 401 .*\/v1\/nodes\/keeper/ });
});
