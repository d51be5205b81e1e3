// Honest stale state: when the daemon stops, the page says its rows are stale (banner,
// body[data-stale]), disables every evict and lift action and stops the ages ticking; when
// the daemon is back, the page is live again without the old rows, actions enabled.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, launchBrowser, openPage, registerOk, row, evictFromRow, screenshot,
  eventually, assertClean, delay } from "./support.mjs";

let daemon, browser, p;
const regs = [];

before(async () => {
  daemon = await new Daemon().start();
  for (const [i, n] of ["app1", "app2", "app3"].entries()) regs.push(await registerOk(daemon.epmdPort, n, 24001 + i));
  browser = await launchBrowser();
  p = await openPage(browser, daemon);
  await row(p.page, "app3").waitFor({ timeout: 2000 });
  // A hold, so that there is a lift button too.
  await evictFromRow(p.page, "app3", { reason: "stale test", hold: "300" });
  await p.page.locator('#holds-list li.hold[data-name="app3"] button.lift').waitFor({ timeout: 3000 });
});

after(async () => {
  for (const r of regs) r.socket.destroy();
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

const ages = () => p.page.locator("#rows tr[data-name]:not(.removed) td.since").allTextContents();
// Every action on a node or a hold (rows on their way out have theirs disabled anyway).
const actions = () => p.page.locator("#rows tr:not(.removed) button.evict, #holds-list button.lift").evaluateAll((bs) => bs.map((b) => b.disabled));

test("live: the banner is hidden, actions enabled, ages tick", async () => {
  assert.equal(await p.page.locator("#stale-banner").isVisible(), false);
  assert.notEqual(await p.page.getAttribute("body", "data-stale"), "true");
  const enabled = await actions();
  assert.ok(enabled.length >= 3 && enabled.every((d) => !d), "actions enabled: " + enabled);
  const first = await ages();
  await eventually(async () => JSON.stringify(await ages()) !== JSON.stringify(first), 3000, "the ages to tick");
});

test("daemon down: stale banner, body[data-stale], actions disabled, ages frozen", async () => {
  await daemon.stop();
  await p.page.waitForSelector('body[data-stale="true"]', { timeout: 5000 });
  await p.page.locator("#stale-banner").waitFor({ state: "visible", timeout: 1000 });
  assert.equal(await p.page.getAttribute("#stale-banner", "role"), "alert");
  assert.match(await p.page.textContent("#stale-banner"), /disabled/i);
  assert.notEqual(await p.page.getAttribute("body", "data-connection"), "live");
  const disabled = await actions();
  assert.ok(disabled.length >= 3 && disabled.every((d) => d), "every evict/lift disabled: " + disabled);
  assert.equal(await row(p.page, "app1").count(), 1, "the rows that were known stay, marked stale");
  const frozen = await ages();
  // An observation window, not synchronisation: live ages change within 1 s (checked above).
  await delay(2500);
  assert.deepEqual(await ages(), frozen, "ages stop ticking while stale");
  await screenshot(p.page, "daemon-down.png", { fullPage: true });
});

test("daemon back: live again, old rows gone, actions enabled", async () => {
  for (const r of regs) r.socket.destroy(); // They died with the daemon.
  await daemon.start();
  await p.page.waitForSelector('body[data-connection="live"]', { timeout: 15000 });
  assert.notEqual(await p.page.getAttribute("body", "data-stale"), "true");
  assert.equal(await p.page.locator("#stale-banner").isVisible(), false);
  await row(p.page, "app1").waitFor({ state: "detached", timeout: 3000 });
  assert.equal(await p.page.locator('#holds-list li.hold[data-name="app3"]').count(), 0, "the hold died with the daemon");
  const fresh = await registerOk(daemon.epmdPort, "fresh", 24010);
  regs.push(fresh);
  await row(p.page, "fresh").waitFor({ timeout: 2000 });
  assert.equal(await row(p.page, "fresh").locator("button.evict").isEnabled(), true);
  assertClean(p, { daemonWasDown: true });
});
