// The token form (no prompt()): with anonymous reads refused, the page asks for a token in
// #token-panel; a wrong one shows #token-error, the right one loads the list.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, READ_TOKEN, launchBrowser, openPage, registerOk, row, waitText, assertClean } from "./support.mjs";

let daemon, browser, p, reg;

before(async () => {
  daemon = await new Daemon(["--http-anonymous-read=false"]).start();
  reg = await registerOk(daemon.epmdPort, "secret", 28001);
  browser = await launchBrowser();
  p = await openPage(browser, daemon, { waitLive: false });
});

after(async () => {
  if (reg) reg.socket.destroy();
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

test("the page asks for a token in a form, not with prompt()", async () => {
  await p.page.waitForSelector('body[data-needs-token="true"]', { timeout: 5000 });
  await p.page.waitForSelector('body[data-connection="unauthorized"]', { timeout: 5000 });
  await p.page.locator("#token-panel").waitFor({ state: "visible", timeout: 2000 });
  assert.equal(await p.page.getAttribute("#token-input", "type"), "password");
  assert.equal(await p.page.locator("#token-panel #token-form").count(), 1);
  assert.equal(await row(p.page, "secret").count(), 0, "nothing listed without a token");
  assert.deepEqual(p.dialogs, []);
});

test("a wrong token shows #token-error", async () => {
  await p.page.fill("#token-input", "wrong-token-0000000000");
  await p.page.click("#token-save");
  await p.page.waitForFunction(() => {
    const e = document.querySelector("#token-error");
    return e && e.textContent.trim() !== "" && !e.hidden && e.offsetParent !== null;
  }, null, { timeout: 5000 });
  assert.equal(await row(p.page, "secret").count(), 0);
  assert.equal(await p.page.locator("#token-panel").isVisible(), true);
});

test("the right token loads the list and hides the form", async () => {
  await p.page.fill("#token-input", READ_TOKEN);
  await p.page.click("#token-save");
  await row(p.page, "secret").waitFor({ timeout: 5000 });
  await p.page.waitForSelector('body[data-connection="live"]', { timeout: 5000 });
  await p.page.locator("#token-panel").waitFor({ state: "hidden", timeout: 2000 });
  await waitText(p.page, "#count", "1");
  assert.equal(await p.page.evaluate(() => sessionStorage.getItem("epmdx.token")), READ_TOKEN);
  // The refused requests (no token, the wrong one) are the only console errors here.
  assertClean(p, { allow: /status of 401 / });
});

test("#token-button opens the form at any time", async () => {
  await p.page.click("#token-button");
  await p.page.locator("#token-panel").waitFor({ state: "visible", timeout: 2000 });
  assertClean(p, { allow: /status of 401 / });
});
