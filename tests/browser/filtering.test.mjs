// Filtering: the text filter (name, host, port, peer; any case, any UTF-8), the type filter
// (a hidden node: type 72 in ALIVE2), the health filter; "#shown" and the counts; and
// un-hiding rows does not replay the "new row" highlight.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, ErlNode, launchBrowser, openPage, registerOk, waitListed, visibleRows,
  eventually, text, waitText, assertClean } from "./support.mjs";

let daemon, browser, p, erl;
const regs = [];

before(async () => {
  daemon = await new Daemon(["--probe-interval=1"]).start();
  regs.push(await registerOk(daemon.epmdPort, "web1", 21001));
  regs.push(await registerOk(daemon.epmdPort, "web2", 21002));
  regs.push(await registerOk(daemon.epmdPort, "db1", 21003, { type: 72 }));
  regs.push(await registerOk(daemon.epmdPort, "caf\u00e9-\u2603", 21004));
  erl = new ErlNode("rabbit", daemon.epmdPort);
  await waitListed(daemon, "rabbit");
  browser = await launchBrowser();
  p = await openPage(browser, daemon);
  await eventually(async () => {
    const h = await visibleRows(p.page, { attr: "data-health" });
    return h.length === 5 && h.filter((x) => x === "alive").length === 1 &&
      h.filter((x) => x === "unresponsive").length === 4;
  }, 15000, "one alive and four unresponsive rows");
});

after(async () => {
  for (const r of regs) r.socket.destroy();
  if (erl) await erl.stop();
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

const shown = async () => (await visibleRows(p.page)).sort();

test("the counts", async () => {
  await waitText(p.page, "#count", "5");
  assert.equal(await text(p.page, "#count-label"), "nodes");
  assert.equal(await text(p.page, "#count-normal"), "4");
  assert.equal(await text(p.page, "#count-hidden"), "1");
  assert.equal(await text(p.page, "#count-alive"), "1");
  assert.equal(await text(p.page, "#count-unresponsive"), "4");
  assert.equal(await text(p.page, "#count-unknown"), "0");
  assert.equal(await text(p.page, "#count-holds"), "0");
  assert.equal(await text(p.page, "#shown"), "", "nothing filtered: no \"shown\"");
});

test("the text filter: name (any case), port, UTF-8, host", async () => {
  await p.page.fill("#filter", "WEB");
  assert.deepEqual(await shown(), ["web1", "web2"]);
  assert.match(await text(p.page, "#shown"), /\b2 shown\b/);
  assert.equal(await text(p.page, "#count"), "5", "the total stays the total");
  await p.page.fill("#filter", "21003");
  assert.deepEqual(await shown(), ["db1"]);
  await p.page.fill("#filter", "CAF\u00c9");
  assert.deepEqual(await shown(), ["caf\u00e9-\u2603"]);
  await p.page.fill("#filter", "\u2603");
  assert.deepEqual(await shown(), ["caf\u00e9-\u2603"]);
  await p.page.fill("#filter", "no-such-node");
  assert.deepEqual(await shown(), []);
  assert.match(await text(p.page, "#shown"), /\b0 shown\b/);
  const host = await daemon.host();
  if (host) {
    await p.page.fill("#filter", host);
    assert.equal((await shown()).length, 5, "every local node has the daemon's host");
  }
  await p.page.fill("#filter", "");
  assert.equal((await shown()).length, 5);
  assert.equal(await text(p.page, "#shown"), "");
});

test("the type filter: normal, hidden", async () => {
  await p.page.selectOption("#type-filter", "hidden");
  assert.deepEqual(await shown(), ["db1"]);
  assert.deepEqual(await visibleRows(p.page, { attr: "data-type" }), ["hidden"]);
  assert.match(await text(p.page, "#shown"), /\b1 shown\b/);
  await p.page.selectOption("#type-filter", "normal");
  assert.deepEqual(await shown(), ["caf\u00e9-\u2603", "rabbit", "web1", "web2"]);
  await p.page.selectOption("#type-filter", "other");
  assert.deepEqual(await shown(), []);
  await p.page.selectOption("#type-filter", "");
  assert.equal((await shown()).length, 5);
});

test("the health filter: alive, unresponsive, and combined with text", async () => {
  await p.page.selectOption("#health-filter", "alive");
  assert.deepEqual(await shown(), ["rabbit"]);
  await p.page.selectOption("#health-filter", "unresponsive");
  assert.deepEqual(await shown(), ["caf\u00e9-\u2603", "db1", "web1", "web2"]);
  await p.page.fill("#filter", "web");
  assert.deepEqual(await shown(), ["web1", "web2"]);
  assert.match(await text(p.page, "#shown"), /\b2 shown\b/);
  await p.page.selectOption("#health-filter", "unknown");
  assert.deepEqual(await shown(), []);
  await p.page.selectOption("#health-filter", "");
  await p.page.fill("#filter", "");
  assert.equal((await shown()).length, 5);
});

test("un-hiding rows does not replay the new-row highlight", async () => {
  // The highlight of the rows' real arrival has ended...
  await p.page.waitForFunction(() => document.querySelectorAll("#rows tr.added").length === 0,
    null, { timeout: 10000 });
  await p.page.fill("#filter", "zzz");
  assert.deepEqual(await shown(), []);
  await p.page.fill("#filter", "");
  assert.equal((await shown()).length, 5);
  // ...and showing them again (checked now and two frames later) does not start it again.
  const added = () => p.page.evaluate(() => new Promise((resolve) => {
    const now = document.querySelectorAll("#rows tr.added").length;
    requestAnimationFrame(() => requestAnimationFrame(() =>
      resolve(now + document.querySelectorAll("#rows tr.added").length)));
  }));
  assert.equal(await added(), 0);
  // A real new node is highlighted (so the check above could fail).
  regs.push(await registerOk(daemon.epmdPort, "web3", 21005));
  await p.page.waitForSelector('#rows tr.added[data-name="web3"]', { timeout: 2000 });
  assertClean(p);
});
