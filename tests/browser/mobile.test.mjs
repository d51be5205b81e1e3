// A phone: at 360 px and 390 px wide the document never scrolls sideways, and each node's
// card shows its name, its health and its evict action on screen.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, launchBrowser, openPage, registerOk, row, waitText, screenshot, assertClean } from "./support.mjs";

let daemon, browser;
const regs = [];
const names = ["web1", "rabbit-queue-worker-eu-west-1b-0042", "caf\u00e9-\u2603", "n" + "x".repeat(80)];

before(async () => {
  daemon = await new Daemon(["--probe-interval=1"]).start();
  for (const [i, n] of names.entries()) regs.push(await registerOk(daemon.epmdPort, n, 29001 + i));
  browser = await launchBrowser();
});

after(async () => {
  for (const r of regs) r.socket.destroy();
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

for (const width of [360, 390]) {
  test(width + " px wide: no horizontal scroll, name, health and evict visible in each card", async () => {
    const p = await openPage(browser, daemon, { viewport: { width, height: 780 } });
    await waitText(p.page, "#count", String(names.length));
    const layout = await p.page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
    assert.ok(layout.scroll <= layout.inner, "scrollWidth " + layout.scroll + " > innerWidth " + layout.inner);
    for (const n of names) {
      const r = row(p.page, n);
      await r.scrollIntoViewIfNeeded();
      for (const part of ["td.name", "td.health", "button.evict"]) {
        const el = r.locator(part);
        assert.ok(await el.isVisible(), part + " of " + n + " visible");
        const box = await el.boundingBox();
        assert.ok(box.x >= 0 && box.x + box.width <= width + 0.5,
          part + " of " + n + " inside the " + width + " px screen: " + JSON.stringify(box));
      }
    }
    if (width === 360) {
      await p.page.evaluate(() => window.scrollTo(0, 0));
      await screenshot(p.page, "mobile.png", { fullPage: true });
    }
    assertClean(p);
    await p.context.close();
  });
}
