// Health and holds first-class, with a real Erlang node: a node whose port answers nothing
// turns unresponsive (row class, count, HEALTH_CHANGED event); the Erlang node is alive and
// its details show the holder (beam.smp's pid, its state); an eviction with a 60 s hold from
// the page lists the hold with a ticking remaining time, the node's own re-registration is
// refused, and lifting the hold from the page lets the name register again.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, ErlNode, DEAD_PORT, launchBrowser, openPage, register, registerOk, row,
  waitListed, evictFromRow, eventually, text, waitText, assertClean } from "./support.mjs";

let daemon, browser, p, erl, sick;

before(async () => {
  daemon = await new Daemon(["--probe-interval=1", "--holder-interval=1"]).start();
  erl = new ErlNode("rabbit", daemon.epmdPort);
  await waitListed(daemon, "rabbit");
  browser = await launchBrowser();
  p = await openPage(browser, daemon);
  await row(p.page, "rabbit").waitFor({ timeout: 3000 });
});

after(async () => {
  if (sick) sick.socket.destroy();
  if (erl) await erl.stop();
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

test("a node whose port answers nothing turns unresponsive", async () => {
  await waitText(p.page, "#count-unresponsive", "0");
  sick = await registerOk(daemon.epmdPort, "sick", DEAD_PORT);
  const r = row(p.page, "sick");
  await p.page.waitForSelector('#rows tr.unresponsive[data-name="sick"][data-health="unresponsive"]', { timeout: 5000 });
  await waitText(p.page, "#count-unresponsive", "1");
  await p.page.locator('#events-list li.event[data-type="HEALTH_CHANGED"][data-name="sick"]').first().waitFor({ timeout: 3000 });
  // Visibly distinct from a healthy row.
  const [bad, good] = await Promise.all([r, row(p.page, "rabbit")].map((l) =>
    l.evaluate((tr) => { const s = getComputedStyle(tr); const c = getComputedStyle(tr.querySelector("td.health"));
      return [s.backgroundColor, s.color, s.borderLeftColor, c.color, c.backgroundColor, s.opacity].join("|"); })));
  assert.notEqual(bad, good, "the unresponsive row looks different");
});

test("a -name node is shown as Erlang names it once its holder is found", async () => {
  // Registered, it is first shown on the daemon's host; its holder's command line says
  // -name lg@127.0.0.1, and a HOLDER_CHANGED event corrects the row in place.
  const lg = new ErlNode("lg@127.0.0.1", daemon.epmdPort, { flag: "-name" });
  try {
    await p.page.waitForFunction(() => {
      const td = document.querySelector('#rows tr[data-name="lg"] td.name');
      return td && td.textContent === "lg@127.0.0.1";
    }, null, { timeout: 10000 });
    await p.page.locator('#events-list li.event[data-type="HOLDER_CHANGED"][data-name="lg"]').first()
      .waitFor({ timeout: 3000 });
    assert.match(await p.page.locator('#events-list li.event[data-type="HOLDER_CHANGED"][data-name="lg"]')
      .first().textContent(), new RegExp("held by pid " + lg.pid));
  } finally {
    await lg.stop();
  }
  await row(p.page, "lg").waitFor({ state: "detached", timeout: 5000 });
});

test("a real Erlang node is alive and its details show its holder", async () => {
  await p.page.waitForSelector('#rows tr[data-name="rabbit"][data-health="alive"]', { timeout: 8000 });
  await waitText(p.page, "#count-alive", "1");
  // The holder is looked up every second: wait for it through the API first.
  await eventually(async () => (await daemon.api("/v1/nodes/rabbit")).body.holder?.processes?.length > 0,
    8000, "the holder of rabbit");
  await row(p.page, "rabbit").locator("button.details").click();
  await p.page.waitForSelector("#details[open]");
  await p.page.waitForSelector('body[data-details-loaded="true"]', { timeout: 3000 });
  const field = (f) => text(p.page, '#details-facts dd[data-field="' + f + '"]');
  assert.equal(await field("holder-pid"), String(erl.pid), "holder pid is beam.smp's");
  assert.match(await field("holder-state"), /running|sleeping/i);
  assert.match(await field("holder-command"), /beam/);
  assert.match(await field("health"), /alive/i);
  assert.equal(await field("name"), "rabbit");
  assert.match(await text(p.page, "#details-title"), /^rabbit(@|$)/);
  await p.page.keyboard.press("Escape");
  await p.page.waitForFunction(() => !document.querySelector("#details").open);
});

test("evict with a 60 s hold from the page, the node is refused, lift from the page", async () => {
  const refusedBefore = await daemon.metric("epmdx_registration_errors_total", 'reason="name_held"');
  await evictFromRow(p.page, "rabbit", { reason: "hung VM", hold: "60" });
  const hold = p.page.locator('#holds-list li.hold[data-name="rabbit"]');
  await hold.waitFor({ timeout: 3000 });
  await waitText(p.page, "#count-holds", "1");
  assert.equal(await p.page.locator("#holds-empty").isVisible(), false);
  assert.match(await hold.locator(".actor").textContent(), /browser-admin/);
  assert.match(await hold.locator(".reason").textContent(), /hung VM/);
  // "42 s left" (or "1 min left" at the start of a minute's hold): seconds.
  const left = async () => {
    const t = await hold.locator(".remaining").textContent();
    const m = t.match(/(\d+)\s*(s|min)\b.*left/);
    assert.ok(m, "remaining time: " + JSON.stringify(t));
    return Number(m[1]) * (m[2] === "min" ? 60 : 1);
  };
  const first = await left();
  assert.ok(first > 50 && first <= 60, "remaining " + first);
  await eventually(async () => (await left()) < first, 3000, "the remaining time to tick");

  // The Erlang node tries again by itself (OTP retries about every 2 s) and is refused...
  await eventually(async () => (await daemon.metric("epmdx_registration_errors_total", 'reason="name_held"')) > refusedBefore,
    10000, "the node's own re-registration to be refused");
  // ...as is anybody's ALIVE2 for the name.
  const raw = await register(daemon.epmdPort, "rabbit", 23001);
  raw.socket.destroy();
  assert.notEqual(raw.result, 0, "ALIVE2 for a held name is refused");
  assert.equal(await row(p.page, "rabbit").count(), 0);

  await hold.locator("button.lift").click();
  await hold.waitFor({ state: "detached", timeout: 3000 });
  await waitText(p.page, "#count-holds", "0");
  await p.page.locator("#holds-empty").waitFor({ timeout: 2000 });
  // The name registers again: the Erlang node's own retry takes it.
  await row(p.page, "rabbit").waitFor({ timeout: 10000 });
  assertClean(p);
});
