// The notice of an action appears where the action was taken: evicting the last of 30 rows
// after scrolling down to it shows its notice inside the viewport, in place of the row.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, launchBrowser, openPage, registerOk, row, evictFromRow, waitText,
  assertClean } from "./support.mjs";

let daemon, browser, p;
const regs = [];
const VIEWPORT = { width: 1280, height: 720 };

before(async () => {
  daemon = await new Daemon().start();
  for (let i = 0; i < 30; i++) {
    regs.push(await registerOk(daemon.epmdPort, "fleet" + String(i).padStart(2, "0"), 25000 + i));
  }
  browser = await launchBrowser();
  p = await openPage(browser, daemon, { viewport: VIEWPORT });
  await waitText(p.page, "#count", "30");
});

after(async () => {
  for (const r of regs) r.socket.destroy();
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

test("evicting the last of 30 rows shows the notice in view, where the row was", async () => {
  const names = await p.page.locator("#rows tr[data-name]:not(.removed)").evaluateAll((trs) => trs.map((tr) => tr.dataset.name));
  assert.equal(names.length, 30);
  const last = names[names.length - 1];
  assert.equal(last, "fleet00", "newest first: the oldest is last");
  await row(p.page, last).scrollIntoViewIfNeeded();
  const scrolled = await p.page.evaluate(() => window.scrollY);
  assert.ok(scrolled > 0, "the last row needed scrolling to");
  await evictFromRow(p.page, last, { reason: "notice test" });
  const notice = p.page.locator("#rows tr.notice-row .action-notice.ok, #rows tr.notice-row.action-notice.ok")
    .filter({ hasText: "Evicted" });
  await notice.first().waitFor({ timeout: 3000 });
  assert.match(await notice.first().textContent(), new RegExp("Evicted " + last));
  const box = await notice.first().boundingBox();
  assert.ok(box, "the notice is rendered");
  assert.ok(box.y >= 0 && box.y + box.height <= VIEWPORT.height && box.x >= 0 && box.x + box.width <= VIEWPORT.width,
    "the notice is inside the viewport: " + JSON.stringify(box) + " scrollY " + await p.page.evaluate(() => window.scrollY));
  await waitText(p.page, "#count", "29");
  assertClean(p);
});
