// A big fleet: 5,000 names. The page renders a window of rows (300, "Show more" adds 300)
// over all of them, counts all of them, finds any of them by filter or sort, and keeps up
// with churn (its revision reaches the daemon's), with no console error.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, launchBrowser, openPage, registerOk, eventually, text, waitText, assertClean }
  from "./support.mjs";

const FLEET = 5000;
let daemon, browser, p;
const sockets = [];

before(async () => {
  daemon = await new Daemon(["--probe-interval=0"]).start();
  for (let i = 0; i < FLEET; i += 100) {
    const batch = [];
    for (let j = i; j < i + 100; j++) batch.push(registerOk(daemon.epmdPort, "n" + String(j).padStart(5, "0"), 20000));
    sockets.push(...await Promise.all(batch));
  }
  browser = await launchBrowser();
  p = await openPage(browser, daemon);
});

after(async () => {
  for (const s of sockets) s.socket.destroy();
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

const domRows = () => p.page.locator("#rows tr:not(.removed):not(.notice-row)").count();

test("all are counted, a window of them is rendered", async () => {
  await waitText(p.page, "#count", String(FLEET), 10000);
  assert.equal(await domRows(), 300);
  assert.match(await text(p.page, "#more-text"), /Showing 300 of 5,000/);
  await p.page.click("#show-more");
  await eventually(async () => (await domRows()) === 600, 3000, "600 rows after Show more");
});

test("any of them is found by filter or by sort", async () => {
  // The oldest registration is far beyond the first window (newest first).
  await p.page.fill("#filter", "n00000");
  await eventually(async () => (await domRows()) === 1, 3000, "the filtered row");
  assert.equal(await p.page.locator("#rows tr td.name .node-name").first().textContent(), "n00000");
  assert.equal(await p.page.locator("#more").isHidden(), true);
  await p.page.fill("#filter", "");
  await p.page.locator('th[data-sort="name"] button').click();
  await eventually(async () =>
    (await p.page.locator("#rows tr td.name .node-name").first().textContent()) === "n00000",
  3000, "n00000 first by name");
  assert.equal(await domRows(), 300, "a new sort or filter starts from one window again");
});

test("churn: the page keeps up with the daemon", async () => {
  for (let round = 0; round < 10; round++) {
    const gone = sockets.splice(0, 20);
    for (const s of gone) s.socket.destroy();
    const batch = [];
    for (let j = 0; j < 20; j++) batch.push(registerOk(daemon.epmdPort, "c" + round + "-" + j, 20000));
    sockets.push(...await Promise.all(batch));
  }
  await eventually(async () => (await daemon.api("/v1/nodes")).body.nodes.length === FLEET, 5000, "the daemon to settle");
  const { body } = await daemon.api("/v1/nodes");
  await eventually(async () => (await text(p.page, "#revision")) === "revision " + body.revision,
    5000, "the page to reach revision " + body.revision);
  assert.equal(await text(p.page, "#count"), String(FLEET));
  assertClean(p);
});
