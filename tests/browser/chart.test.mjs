// The chart: after registrations and unregistrations, #chart samples the live count
// (data-points, path.live) and draws registrations and unregistrations per minute.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { registerOk, waitText, assertClean, startPage, stopPage } from "./support.mjs";

let daemon, browser, p;

before(async () => ({ daemon, browser, p } = await startPage()));

after(() => stopPage({ daemon, browser }));

test("registrations and unregistrations show in the chart", async () => {
  const regs = [];
  for (let i = 0; i < 5; i++) regs.push(await registerOk(daemon.epmdPort, "c" + i, 30001 + i));
  await waitText(p.page, "#count", "5");
  for (const r of regs.slice(0, 3)) r.socket.destroy();
  await waitText(p.page, "#count", "2");
  await p.page.waitForFunction(() => {
    const c = document.querySelector("#chart");
    return c && Number(c.getAttribute("data-points")) > 0 &&
      c.querySelectorAll("rect.reg").length > 0 && c.querySelectorAll("rect.unreg").length > 0;
  }, null, { timeout: 5000 });
  const chart = await p.page.locator("#chart").evaluate((c) => ({
    tag: c.tagName.toLowerCase(),
    points: Number(c.getAttribute("data-points")),
    live: c.querySelectorAll("path.live").length,
    regHeight: Math.max(...[...c.querySelectorAll("rect.reg")].map((r) => r.getBBox().height)),
    unregHeight: Math.max(...[...c.querySelectorAll("rect.unreg")].map((r) => r.getBBox().height)),
    titles: c.querySelectorAll("title").length,
  }));
  assert.equal(chart.tag, "svg");
  assert.ok(chart.points > 0);
  assert.ok(chart.live >= 1, "path.live drawn");
  assert.ok(chart.regHeight > 0 && chart.unregHeight > 0, "bars have a height: " + JSON.stringify(chart));
  assert.ok(chart.titles > 0, "tooltips");
  for (const r of regs.slice(3)) r.socket.destroy();
  await waitText(p.page, "#count", "0");
  assertClean(p);
});
