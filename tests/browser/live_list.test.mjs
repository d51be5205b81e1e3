// The live list: a node registered over the epmd wire shows within a second as name@host
// (host: the daemon's own, from /v1/clusters) and goes when its socket closes; any UTF-8
// name, up to epmd's 255 bytes, shows intact and does not break the layout.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { registerOk, row, text, waitText, assertClean, startPage, stopPage } from "./support.mjs";

let daemon, browser, p, host;

before(async () => {
  ({ daemon, browser, p } = await startPage());
  host = await daemon.host();
});

after(() => stopPage({ daemon, browser }));

test("the daemon reports its host name and the page shows it", async () => {
  assert.notEqual(host, "", "GET /v1/clusters has a non-empty \"host\"");
  assert.equal(await text(p.page, "#host"), host);
  assert.equal(await text(p.page, "#count"), "0");
});

test("a node registered on the wire appears within 1 s as name@host and goes with its socket", async () => {
  const t0 = Date.now();
  const { socket } = await registerOk(daemon.epmdPort, "web1", 4711);
  await row(p.page, "web1").waitFor({ timeout: 1000 });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 1000, "appeared after " + elapsed + " ms");
  console.log("live list: web1 appeared " + elapsed + " ms after its ALIVE2");
  assert.equal(await row(p.page, "web1").locator("td.name").textContent(), "web1@" + host);
  assert.equal(await row(p.page, "web1").locator("td.name span.node-name").textContent(), "web1");
  assert.equal(await row(p.page, "web1").locator("td.port").textContent(), "4711");
  await waitText(p.page, "#count", "1");
  const t1 = Date.now();
  socket.destroy();
  await row(p.page, "web1").waitFor({ state: "detached", timeout: 2500 });
  console.log("live list: web1 gone " + (Date.now() - t1) + " ms after its socket closed");
  await waitText(p.page, "#count", "0");
});

test("any UTF-8 name shows intact and keeps the layout", async () => {
  const long = "n" + "\u00e9".repeat(127); // 255 bytes: epmd's longest name.
  assert.equal(Buffer.byteLength(long), 255);
  const names = ["caf\u00e9", "snow\u2603man", "\u{1F608}node", long];
  const regs = [];
  for (const [i, n] of names.entries()) regs.push(await registerOk(daemon.epmdPort, n, 5001 + i));
  for (const n of names) {
    await row(p.page, n).waitFor({ timeout: 2000 });
    assert.equal(await row(p.page, n).locator("td.name").textContent(), n + "@" + host);
  }
  await waitText(p.page, "#count", String(names.length));
  const layout = await p.page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(layout.scroll <= layout.inner, "no horizontal scroll: " + JSON.stringify(layout));
  // The long name's row keeps its actions on screen and stays a reasonable height.
  const evict = await row(p.page, long).locator("button.evict").boundingBox();
  assert.ok(evict && evict.x >= 0 && evict.x + evict.width <= layout.inner, "evict on screen: " + JSON.stringify(evict));
  const box = await row(p.page, long).boundingBox();
  assert.ok(box.height < 200, "the 255-byte name's row is " + box.height + " px high");
  for (const r of regs) r.socket.destroy();
  await waitText(p.page, "#count", "0");
  assertClean(p);
});
