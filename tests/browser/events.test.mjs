// The events pane: what happened before the page was opened (from /v1/events) and a real
// eviction from the page with a reason and a hold: REGISTERED, UNREGISTERED (reason
// evicted, the actor, the detail), HELD, then HOLD_LIFTED after lifting it from the page.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, launchBrowser, openPage, registerOk, row, evictFromRow, eventually,
  assertClean } from "./support.mjs";

let daemon, browser, p, host;

before(async () => {
  daemon = await new Daemon().start();
  host = await daemon.host();
  // History from before the page: a node that came and went.
  const early = await registerOk(daemon.epmdPort, "early", 22001);
  early.socket.destroy();
  await eventually(async () => (await daemon.api("/v1/nodes/early")).status === 404, 3000, "early gone");
  browser = await launchBrowser();
  p = await openPage(browser, daemon);
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

const event = (type, name) => p.page.locator('#events-list li.event[data-type="' + type + '"][data-name="' + name + '"]');
const fullName = (n) => (host ? n + "@" + host : n);

test("events from before the page was opened are shown", async () => {
  const { status, body } = await daemon.api("/v1/events?limit=50");
  assert.equal(status, 200, "GET /v1/events");
  assert.ok(body.events.some((e) => JSON.stringify(e).includes("early")), "the history has early");
  await event("REGISTERED", "early").waitFor({ timeout: 3000 });
  await event("UNREGISTERED", "early").waitFor({ timeout: 3000 });
  assert.match(await event("REGISTERED", "early").textContent(), new RegExp(fullName("early")));
  assert.match(await event("UNREGISTERED", "early").locator(".reason").textContent(), /connection closed|closed/i);
});

test("a release's helper node is marked as such; another node is not", async () => {
  // The name is what marks it (rpc-XXXX-APP, as bin/demo rpc registers it): a raw ALIVE2 will do.
  const helper = await registerOk(daemon.epmdPort, "rpc-1a2b-demo", 22003);
  const plain = await registerOk(daemon.epmdPort, "rpc-demo", 22004);
  await event("REGISTERED", "rpc-1a2b-demo").waitFor({ timeout: 3000 });
  await event("REGISTERED", "rpc-demo").waitFor({ timeout: 3000 });
  assert.equal(await event("REGISTERED", "rpc-1a2b-demo").locator(".helper-tag").textContent(),
    "bin/demo rpc helper");
  assert.equal(await event("REGISTERED", "rpc-demo").locator(".helper-tag").count(), 0);
  helper.socket.destroy();
  plain.socket.destroy();
  await event("UNREGISTERED", "rpc-1a2b-demo").locator(".helper-tag").waitFor({ timeout: 3000 });
});

test("an eviction with a reason and a hold, then the lift from the page", async () => {
  const victim = await registerOk(daemon.epmdPort, "victim", 22002);
  await event("REGISTERED", "victim").waitFor({ timeout: 2000 });
  await row(p.page, "victim").waitFor({ timeout: 2000 });
  await evictFromRow(p.page, "victim", { reason: "disk full on rack 7", hold: "60" });

  const unreg = event("UNREGISTERED", "victim");
  await unreg.waitFor({ timeout: 3000 });
  assert.match(await unreg.locator(".reason").textContent(), /evicted/i);
  assert.match(await unreg.locator(".actor").textContent(), /browser-admin/);
  assert.match(await unreg.locator(".detail").textContent(), /disk full on rack 7/);
  assert.match(await unreg.textContent(), new RegExp(fullName("victim")));
  await event("HELD", "victim").waitFor({ timeout: 3000 });
  assert.match(await event("HELD", "victim").textContent(), /browser-admin/);

  const hold = p.page.locator('#holds-list li.hold[data-name="victim"]');
  await hold.waitFor({ timeout: 3000 });
  await hold.locator("button.lift").click();
  await event("HOLD_LIFTED", "victim").waitFor({ timeout: 3000 });
  await hold.waitFor({ state: "detached", timeout: 3000 });
  victim.socket.destroy();

  // Newest first, by revision; the ones of this test in the order they happened.
  const listed = await p.page.locator("#events-list li.event").evaluateAll((lis) =>
    lis.map((li) => ({ type: li.dataset.type, name: li.dataset.name, rev: Number(li.dataset.revision) })));
  const revs = listed.map((e) => e.rev);
  assert.deepEqual(revs, [...revs].sort((a, b) => b - a), "newest first");
  assert.ok(listed.length <= 200);
  const mine = listed.filter((e) => e.name === "victim").map((e) => e.type).reverse();
  const order = ["REGISTERED", "UNREGISTERED", "HELD", "HOLD_LIFTED"];
  assert.deepEqual(mine.filter((t) => order.includes(t)), order, "victim's events: " + mine);
  assertClean(p);
});
