// Until the page has the daemon's list it shows no count, not even 0: while it connects
// ("loading") and while it waits for a token (--http-anonymous-read=false: "token needed").
// Once the list is in, "0 nodes" and "No node is registered." are true and shown.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, READ_TOKEN, launchBrowser, registerOk, row, text, waitText } from "./support.mjs";

const daemons = [];
let browser;

after(async () => {
  if (browser) await browser.close();
  for (const d of daemons) await d.close();
});

/** A page whose console errors are kept, its /v1/clusters request held until `release()`. */
async function heldPage(daemon) {
  browser = browser || await launchBrowser();
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  let release;
  const gate = new Promise((r) => { release = r; });
  await page.route("**/v1/clusters", async (route) => {
    await gate;
    await route.continue();
  });
  await page.goto(daemon.url);
  return { page, errors, release };
}

async function assertNoCount(page, why) {
  assert.notEqual(await text(page, "#count"), "0", why + ": no count of 0");
  assert.doesNotMatch(await text(page, "#empty"), /No node is registered/, why);
  for (const k of ["normal", "hidden", "alive", "unresponsive", "unknown"]) {
    assert.notEqual(await text(page, "#count-" + k), "0", why + ": #count-" + k);
  }
  assert.equal(await page.getAttribute("body", "data-known"), "false", why);
}

test("while it connects: loading, not 0 nodes; then the true count", async () => {
  const daemon = await new Daemon().start();
  daemons.push(daemon);
  const { page, errors, release } = await heldPage(daemon);
  // The script has run (it fills the cluster selector) and is waiting for the daemon.
  await page.waitForFunction(() => document.querySelector("#cluster").options.length > 0);
  await assertNoCount(page, "connecting");
  assert.match(await text(page, "#count-label"), /loading/);
  assert.match(await text(page, "#empty"), /Loading/);
  assert.doesNotMatch(await page.locator("#cluster option").first().textContent(), /\(0\)/,
    "the selector counts nothing yet");
  release();
  await page.waitForSelector('body[data-connection="live"]', { timeout: 5000 });
  await waitText(page, "#count", "0");
  assert.equal(await text(page, "#empty"), "No node is registered.");
  assert.equal(await page.getAttribute("body", "data-known"), "true");
  const reg = await registerOk(daemon.epmdPort, "arrives", 27101);
  await waitText(page, "#count", "1");
  assert.equal(await page.locator("#empty").isHidden(), true);
  reg.socket.destroy();
  assert.deepEqual(errors, []);
});

test("while it waits for a token: token needed, not 0 nodes; then the list", async () => {
  const daemon = await new Daemon(["--http-anonymous-read=false"]).start();
  daemons.push(daemon);
  const reg = await registerOk(daemon.epmdPort, "secret", 27102);
  const { page, errors, release } = await heldPage(daemon);
  release();
  await page.waitForSelector('body[data-connection="unauthorized"]', { timeout: 5000 });
  await page.locator("#token-panel").waitFor({ state: "visible", timeout: 2000 });
  await assertNoCount(page, "token needed");
  await waitText(page, "#count-label", "nodes: token needed");
  assert.match(await text(page, "#empty"), /token/);
  await page.fill("#token-input", READ_TOKEN);
  await page.click("#token-save");
  await row(page, "secret").waitFor({ timeout: 5000 });
  await waitText(page, "#count", "1");
  assert.equal(await text(page, "#count-label"), "node");
  reg.socket.destroy();
  // The refused first requests are the point of the test.
  assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
});
