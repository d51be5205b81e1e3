// The screenshots people look at (artifacts: desktop-light.png, desktop-dark.png): a fleet
// of 30 live nodes like a real one — three real Erlang nodes, raw registrations whose ports
// are those nodes' distribution ports (so the probe finds them alive), two hidden nodes, an
// unresponsive one, a name held after an eviction, and the events of all that.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, ErlNode, DEAD_PORT, launchBrowser, openPage, registerOk, waitListed,
  waitText, eventually, screenshot, assertClean } from "./support.mjs";

let daemon, browser, p;
const erls = [];
const regs = [];

before(async () => {
  daemon = await new Daemon(["--probe-interval=1", "--holder-interval=1"]).start();
  const ports = [];
  for (const n of ["rabbit", "couchdb", "mongooseim"]) {
    erls.push(new ErlNode(n, daemon.epmdPort));
  }
  for (const e of erls) ports.push((await waitListed(daemon, e.name)).port);
  const raw = [];
  for (const svc of ["api", "web", "worker", "ingest"]) {
    for (const zone of ["eu-west-1a", "eu-west-1b", "us-east-2a", "us-east-2c", "ap-south-1"]) {
      raw.push(svc + "-" + zone);
    }
  }
  raw.push("caf\u00e9-r\u00e9servations", "\u0441\u043a\u043b\u0430\u0434-batch", "ledger-replica-3", "scheduler");
  for (const [i, n] of raw.entries()) regs.push(await registerOk(daemon.epmdPort, n, ports[i % ports.length]));
  regs.push(await registerOk(daemon.epmdPort, "remsh-ops", ports[0], { type: 72 }));
  regs.push(await registerOk(daemon.epmdPort, "observer", ports[1], { type: 72 }));
  regs.push(await registerOk(daemon.epmdPort, "billing-7", DEAD_PORT)); // Unresponsive.
  // Some history: a node that came and went, and an eviction with a hold.
  const gone = await registerOk(daemon.epmdPort, "canary-1", ports[2]);
  gone.socket.destroy();
  const held = await registerOk(daemon.epmdPort, "payments-2", ports[2]);
  regs.push(held);
  const ev = await daemon.api("/v1/nodes/payments-2", { method: "DELETE",
    body: { reason: "hung after deploy 4121", holdSeconds: 900 } });
  assert.equal(ev.status, 200, JSON.stringify(ev.body));
  browser = await launchBrowser();
});

after(async () => {
  for (const r of regs) r.socket.destroy();
  for (const e of erls) await e.stop();
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

async function fleet(colorScheme) {
  const q = await openPage(browser, daemon, { viewport: { width: 1440, height: 900 }, colorScheme });
  await waitText(q.page, "#count", "30", 10000);
  await eventually(async () => (await q.page.locator('#rows tr[data-health="unknown"]').count()) === 0,
    15000, "every node probed");
  await waitText(q.page, "#count-unresponsive", "1");
  await waitText(q.page, "#count-alive", "29");
  await waitText(q.page, "#count-hidden", "2");
  await waitText(q.page, "#count-holds", "1");
  await q.page.locator('#holds-list li.hold[data-name="payments-2"]').waitFor();
  assert.ok((await q.page.locator("#events-list li.event").count()) >= 30, "the fleet's events are listed");
  // The new-row highlights have ended: the picture is the steady state.
  await q.page.waitForFunction(() => document.querySelectorAll("#rows tr.added").length === 0, null, { timeout: 10000 });
  return q;
}

test("desktop, light: 30 nodes", async () => {
  p = await fleet("light");
  await screenshot(p.page, "desktop-light.png", { fullPage: true });
  assertClean(p);
  await p.context.close();
});

test("desktop, dark: 30 nodes", async () => {
  p = await fleet("dark");
  await screenshot(p.page, "desktop-dark.png", { fullPage: true });
  assertClean(p);
  await p.context.close();
});
