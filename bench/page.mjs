// The page with a big fleet, in headless Chromium: how soon it shows the nodes, how long the
// browser's main thread is blocked while idle and during churn, whether it keeps up, and
// what it holds. No OTP counterpart (OTP's epmd has no page): absolute figures.
//
//   bench/run page [--names=15000] [--rate=100] [--seconds=30]
//
// Uses the browser tests' support module (real daemon, raw ALIVE2 sockets, Debian's chromium).

import { Daemon, launchBrowser, registerOk, eventually } from "../tests/browser/support.mjs";

const arg = (name, dflt) => {
  const a = process.argv.find((x) => x.startsWith("--" + name + "="));
  return a ? Number(a.split("=")[1]) : dflt;
};
const NAMES = arg("names", 15000);
const RATE = arg("rate", 100); // registrations and unregistrations per second, each
const SECONDS = arg("seconds", 30);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const daemon = await new Daemon(["--probe-interval=0"]).start();
const live = [];
for (let i = 0; i < NAMES; i += 200) {
  const batch = [];
  for (let j = i; j < Math.min(NAMES, i + 200); j++) batch.push(registerOk(daemon.epmdPort, "node" + j, 20000));
  live.push(...await Promise.all(batch));
}
console.log(`registered ${NAMES} names`);

const browser = await launchBrowser();
const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
await page.addInitScript(() => {
  window.__long = [];
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) window.__long.push(e.duration);
  }).observe({ type: "longtask", buffered: true });
});
const longTasks = async () => {
  const all = await page.evaluate(() => window.__long.splice(0));
  return { count: all.length, max: Math.round(Math.max(0, ...all)), sum: Math.round(all.reduce((a, b) => a + b, 0)) };
};
const t0 = Date.now();
await page.goto(daemon.url);
await page.waitForFunction((n) => document.getElementById("count").textContent === String(n) &&
  document.querySelector("#rows tr"), NAMES, { timeout: 120000, polling: 50 });
console.log(`open to ${NAMES} counted and rows shown: ${Date.now() - t0} ms; long tasks`, await longTasks());
await sleep(5000);
console.log("idle 5 s: long tasks", await longTasks());

let seq = 0;
const end = Date.now() + SECONDS * 1000;
while (Date.now() < end) {
  const t = Date.now();
  const n = Math.max(1, Math.round(RATE / 10));
  for (const r of live.splice(0, n)) r.socket.destroy();
  const batch = [];
  for (let k = 0; k < n; k++) batch.push(registerOk(daemon.epmdPort, "churn" + seq++, 20000));
  live.push(...await Promise.all(batch));
  await sleep(Math.max(0, 100 - (Date.now() - t)));
}
console.log(`churn ${RATE}/s for ${SECONDS} s: long tasks`, await longTasks());
const { body } = await daemon.api("/v1/nodes");
const t1 = Date.now();
await eventually(async () => (await page.textContent("#revision")) === "revision " + body.revision, 60000, "catch up");
console.log(`caught up with the daemon ${Date.now() - t1} ms after the churn`);
const dom = await page.evaluate(() => ({ elements: document.getElementsByTagName("*").length,
  rows: document.querySelectorAll("#rows tr").length,
  heapMB: Math.round(performance.memory.usedJSHeapSize / 1e5) / 10 }));
console.log("page holds", dom);
for (const r of live) r.socket.destroy();
await browser.close();
await daemon.close();
