// Filtering: the text filter (name, host, port, peer; any case, any UTF-8), the type filter
// (a hidden node: type 72 in ALIVE2), the health filter; "#shown" and the counts; and
// un-hiding rows does not replay the "new row" highlight.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, ErlNode, launchBrowser, openPage, registerOk, waitListed, visibleRows,
  eventually, text, waitText, waitMatch, waitShown, assertClean } from "./support.mjs";

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

const all = ["caf\u00e9-\u2603", "db1", "rabbit", "web1", "web2"];
// Each test starts unfiltered, whatever the one before left.
async function reset() {
  await p.page.fill("#filter", "");
  await p.page.selectOption("#type-filter", "");
  await p.page.selectOption("#health-filter", "");
  await waitShown(p.page, all);
}

test("the counts", async () => {
  await waitText(p.page, "#count", "5");
  await waitText(p.page, "#count-label", "nodes");
  await waitText(p.page, "#count-normal", "4");
  await waitText(p.page, "#count-hidden", "1");
  await waitText(p.page, "#count-alive", "1");
  await waitText(p.page, "#count-unresponsive", "4");
  await waitText(p.page, "#count-unknown", "0");
  await waitText(p.page, "#count-holds", "0");
  assert.equal(await text(p.page, "#shown"), "", "nothing filtered: no \"shown\"");
});

test("the text filter: name (any case), port, UTF-8, host", async () => {
  await reset();
  await p.page.fill("#filter", "WEB");
  await waitShown(p.page, ["web1", "web2"]);
  await waitMatch(p.page, "#shown", /\b2 shown\b/);
  assert.equal(await text(p.page, "#count"), "5", "the total stays the total");
  await p.page.fill("#filter", "21003");
  await waitShown(p.page, ["db1"]);
  await p.page.fill("#filter", "CAF\u00c9");
  await waitShown(p.page, ["caf\u00e9-\u2603"]);
  await p.page.fill("#filter", "\u2603");
  await waitShown(p.page, ["caf\u00e9-\u2603"]);
  await p.page.fill("#filter", "no-such-node");
  await waitShown(p.page, []);
  await waitMatch(p.page, "#shown", /\b0 shown\b/);
  const host = await daemon.host();
  if (host) {
    await p.page.fill("#filter", host);
    await waitShown(p.page, all); // Every local node has the daemon's host.
  }
  await p.page.fill("#filter", "");
  await waitShown(p.page, all);
  await waitText(p.page, "#shown", "");
});

test("the type filter: normal, hidden", async () => {
  await reset();
  await p.page.selectOption("#type-filter", "hidden");
  await waitShown(p.page, ["db1"]);
  assert.deepEqual(await visibleRows(p.page, { attr: "data-type" }), ["hidden"]);
  await waitMatch(p.page, "#shown", /\b1 shown\b/);
  await p.page.selectOption("#type-filter", "normal");
  await waitShown(p.page, ["caf\u00e9-\u2603", "rabbit", "web1", "web2"]);
  await p.page.selectOption("#type-filter", "other");
  await waitShown(p.page, []);
  await p.page.selectOption("#type-filter", "");
  await waitShown(p.page, all);
});

test("the health filter: alive, unresponsive, and combined with text", async () => {
  await reset();
  await p.page.selectOption("#health-filter", "alive");
  await waitShown(p.page, ["rabbit"]);
  await p.page.selectOption("#health-filter", "unresponsive");
  await waitShown(p.page, ["caf\u00e9-\u2603", "db1", "web1", "web2"]);
  await p.page.fill("#filter", "web");
  await waitShown(p.page, ["web1", "web2"]);
  await waitMatch(p.page, "#shown", /\b2 shown\b/);
  await p.page.selectOption("#health-filter", "unknown");
  await waitShown(p.page, []);
  await p.page.selectOption("#health-filter", "");
  await p.page.fill("#filter", "");
  await waitShown(p.page, all);
});

test("un-hiding rows does not replay the new-row highlight", async () => {
  await reset();
  // The highlight of the rows' real arrival has ended...
  await p.page.waitForFunction(() => document.querySelectorAll("#rows tr.added").length === 0,
    null, { timeout: 10000 });
  // ...from now on, every row that gets the class "added" is recorded.
  await p.page.evaluate(() => {
    window.__added = [];
    const seen = (tr) => tr.nodeType === 1 && tr.matches("tr.added") && window.__added.push(tr.dataset.name);
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes") seen(r.target);
        for (const n of r.addedNodes || []) seen(n);
      }
    }).observe(document.querySelector("#rows"), { subtree: true, childList: true, attributes: true, attributeFilter: ["class"] });
  });
  const added = () => p.page.evaluate(() => new Promise((resolve) =>
    requestAnimationFrame(() => requestAnimationFrame(() => resolve(window.__added)))));
  await p.page.fill("#filter", "zzz");
  await waitShown(p.page, []);
  await p.page.fill("#filter", "");
  await waitShown(p.page, all);
  await p.page.selectOption("#type-filter", "hidden");
  await waitShown(p.page, ["db1"]);
  await p.page.selectOption("#type-filter", "");
  await waitShown(p.page, all);
  assert.deepEqual(await added(), [], "rows highlighted as new when shown again");
  // A really new node is highlighted (so the check above can fail).
  regs.push(await registerOk(daemon.epmdPort, "web3", 21005));
  await eventually(async () => (await added()).includes("web3"), 2000, "web3 highlighted as new");
  assertClean(p);
});
