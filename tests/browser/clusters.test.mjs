// Clusters: the same name in two clusters, the selector with per-cluster counts, and an
// eviction in one cluster that leaves the other's node alone.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { registerOk, visibleRows, evictFromRow, waitText, assertClean, startPage, stopPage } from "./support.mjs";

let daemon, browser, p;

before(async () => ({ daemon, browser, p } = await startPage([], { clusters: ["blue"] })));

after(() => stopPage({ daemon, browser }));

test("the same name in two clusters, a selector with counts, eviction in one", async () => {
  const inDefault = await registerOk(daemon.epmdPort, "twin", 27001);
  const inBlue = await registerOk(daemon.clusterPorts.blue, "twin", 27002);
  const solo = await registerOk(daemon.clusterPorts.blue, "solo", 27003);
  await waitText(p.page, "#count", "3");
  assert.equal(await p.page.getAttribute("body", "data-clusters"), "many");
  assert.deepEqual(await p.page.locator("#cluster option").allTextContents(),
    ["All clusters (3)", "default (1)", "blue (2)"]);
  await p.page.selectOption("#cluster", "blue");
  assert.deepEqual((await visibleRows(p.page, { attr: "data-cluster" })), ["blue", "blue"]);
  await waitText(p.page, "#count", "2");
  const closed = new Promise((r) => inBlue.socket.once("close", r));
  await evictFromRow(p.page, "twin", { cluster: "blue" });
  await closed; // Blue's twin was evicted...
  await p.page.selectOption("#cluster", "");
  await waitText(p.page, "#count", "2");
  const left = await p.page.locator("#rows tr[data-name]:not(.removed)").evaluateAll((trs) =>
    trs.filter((tr) => !tr.hidden).map((tr) => tr.dataset.name + "/" + tr.dataset.cluster).sort());
  assert.deepEqual(left, ["solo/blue", "twin/default"]); // ...and the default cluster's is untouched.
  inDefault.socket.destroy();
  solo.socket.destroy();
  await waitText(p.page, "#count", "0");
  assertClean(p);
});
