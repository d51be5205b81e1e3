// The live page in real headless Chromium against a real epmdx process: nodes registered
// over the epmd wire appear and disappear live, eviction from the page frees the name on
// the wire, and the page recovers on its own when the daemon restarts.
//
//   EPMDX_BIN=build/epmdx node --test tests/browser/page.test.mjs

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const EPMDX = process.env.EPMDX_BIN || path.join(here, "../../build/epmdx");
const ARTIFACTS = process.env.EPMDX_ARTIFACTS || path.join(here, "artifacts");
const TOKEN = "browser-admin-token-0123456789";

// A free port below the kernel's ephemeral range (tests that hold many client sockets take
// ports from that range, and a daemon that finds its port taken exits 0 quietly, as OTP's).
async function freePort() {
  let low = 32768;
  try {
    low = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
  } catch (e) { /* keep the default */ }
  for (let i = 0; i < 1000; i++) {
    const port = 10000 + Math.floor(Math.random() * (low - 10001));
    if (port >= 4369 && port <= 4371) continue;
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "::", () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error("no free port");
}

async function waitPort(port, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, "127.0.0.1", () => { c.destroy(); resolve(true); });
      c.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20)); // Polling with a deadline.
  }
  throw new Error("port " + port + " did not open");
}

// An ALIVE2_REQ over a raw socket; resolves with {socket, reply} once epmdx answered.
function register(epmdPort, name, nodePort) {
  return new Promise((resolve, reject) => {
    const nameBytes = Buffer.from(name, "utf8");
    const body = Buffer.alloc(13 + nameBytes.length);
    body.writeUInt8(120, 0);
    body.writeUInt16BE(nodePort, 1);
    body.writeUInt8(77, 3);
    body.writeUInt8(0, 4);
    body.writeUInt16BE(6, 5);
    body.writeUInt16BE(5, 7);
    body.writeUInt16BE(nameBytes.length, 9);
    nameBytes.copy(body, 11);
    body.writeUInt16BE(0, 11 + nameBytes.length);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(body.length);
    const socket = net.connect(epmdPort, "127.0.0.1", () => socket.write(Buffer.concat([len, body])));
    socket.once("data", (reply) => resolve({ socket, reply }));
    socket.once("error", reject);
  });
}

let ports, tokensFile, daemon, browser, page;
const consoleErrors = [];

function startDaemon() {
  const p = spawn(EPMDX, ["-port", String(ports.epmd), "--cluster=blue=" + ports.blue,
    "--grpc-listen=off", "--probe-interval=1",
    "--http-listen=127.0.0.1:" + ports.http, "--tokens-file=" + tokensFile],
  { stdio: ["ignore", "ignore", "inherit"] });
  return p;
}

async function stopDaemon() {
  if (!daemon || daemon.exitCode !== null) return;
  const exited = new Promise((r) => daemon.once("exit", r));
  daemon.kill("SIGTERM");
  await exited;
}

before(async () => {
  ports = { epmd: await freePort(), http: await freePort(), blue: await freePort() };
  tokensFile = path.join(os.tmpdir(), "epmdx-browser-tokens-" + process.pid);
  fs.writeFileSync(tokensFile, TOKEN + " read evict name=browser\n");
  daemon = startDaemon();
  await waitPort(ports.epmd);
  await waitPort(ports.http);
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto("http://127.0.0.1:" + ports.http + "/");
});

after(async () => {
  if (browser) await browser.close();
  await stopDaemon();
  fs.rmSync(tokensFile, { force: true });
});

const rows = () => page.locator("#rows tr:not(.removed)");
const row = (name) => page.locator("#rows tr:not(.removed)").filter({
  has: page.locator("td.name", { hasText: name }) });

test("the page loads live, with no console error", async () => {
  await page.waitForSelector('body[data-connection="live"]', { timeout: 5000 });
  assert.equal(await page.textContent("#count"), "0");
  assert.deepEqual(consoleErrors, []);
});

test("a node registered over the epmd wire appears within a second", async () => {
  const t0 = Date.now();
  const { socket, reply } = await register(ports.epmd, "web1", 4711);
  assert.equal(reply[1], 0);
  await row("web1").waitFor({ timeout: 1000 });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 1000, "appeared after " + elapsed + " ms");
  assert.equal(await page.textContent("#count"), "1");
  assert.match(await row("web1").textContent(), /4711/);
  socket.destroy();
  await row("web1").waitFor({ state: "detached", timeout: 2000 });
  assert.equal(await page.textContent("#count"), "0");
});

test("non-ASCII names and the filter", async () => {
  const a = await register(ports.epmd, "caf\u00e9-\u2603", 5001);
  const b = await register(ports.epmd, "\u{1F608}node", 5002);
  await row("caf\u00e9-\u2603").waitFor({ timeout: 2000 });
  await row("\u{1F608}node").waitFor({ timeout: 2000 });
  await page.fill("#filter", "caf\u00e9");
  assert.equal(await rows().filter({ hasNot: page.locator("[hidden]") }).evaluateAll(
    (trs) => trs.filter((tr) => !tr.hidden).length), 1);
  assert.match(await page.textContent("#shown"), /1 shown/);
  await page.fill("#filter", "");
  a.socket.destroy();
  b.socket.destroy();
  await page.waitForFunction(() => document.querySelector("#count").textContent === "0");
});

test("evicting from the page removes the node and frees the name on the wire", async () => {
  const { socket } = await register(ports.epmd, "stuck", 6001);
  const closed = new Promise((r) => socket.once("close", r));
  await row("stuck").waitFor({ timeout: 2000 });
  await row("stuck").locator("button.evict").click();
  await page.waitForSelector("#evict-dialog[open]");
  await page.fill("#evict-token", TOKEN);
  await page.fill("#evict-reason", "browser test");
  await page.click("#evict-confirm");
  await row("stuck").waitFor({ state: "detached", timeout: 2000 });
  await page.waitForSelector(".notice.ok");
  assert.match(await page.textContent("#notice"), /Evicted stuck/);
  await closed; // epmdx closed the node's connection.
  const again = await register(ports.epmd, "stuck", 6002);
  assert.equal(again.reply[1], 0, "the name is free again");
  again.socket.destroy();
  await page.waitForFunction(() => document.querySelector("#count").textContent === "0");
});

test("a wrong token gets the server's answer and changes nothing", async () => {
  const { socket } = await register(ports.epmd, "keeper", 7001);
  await row("keeper").waitFor({ timeout: 2000 });
  await page.evaluate(() => sessionStorage.removeItem("epmdx.token"));
  await row("keeper").locator("button.evict").click();
  await page.fill("#evict-token", "not-the-token");
  await page.click("#evict-confirm");
  await page.waitForSelector(".notice.error");
  assert.match(await page.textContent("#notice"), /401 UNAUTHENTICATED/);
  assert.equal(await row("keeper").count(), 1);
  socket.destroy();
  await page.waitForFunction(() => document.querySelector("#count").textContent === "0");
});

test("clusters: the same name in two, a selector with counts, eviction in one", async () => {
  const inDefault = await register(ports.epmd, "twin", 9001);
  const inBlue = await register(ports.blue, "twin", 9002);
  assert.equal(inBlue.reply[1], 0, "the same name registers in another cluster");
  await page.waitForFunction(() => document.querySelectorAll("#rows tr:not(.removed)").length === 2);
  assert.equal(await page.getAttribute("body", "data-clusters"), "many");
  const options = await page.locator("#cluster option").allTextContents();
  assert.deepEqual(options, ["All clusters (2)", "default (1)", "blue (1)"]);
  await page.selectOption("#cluster", "blue");
  const visible = () => page.locator("#rows tr:not(.removed)").evaluateAll(
    (trs) => trs.filter((tr) => !tr.hidden).map((tr) => tr.querySelector("td.cluster").textContent));
  assert.deepEqual(await visible(), ["blue"]);
  assert.match(await page.textContent("#cluster-info"),
    new RegExp("port " + ports.blue + " · names from any · lookups from any"));
  const closed = new Promise((r) => inBlue.socket.once("close", r));
  await page.locator("#rows tr:not(.removed):not([hidden]) button.evict").click();
  await page.fill("#evict-token", TOKEN);
  await page.click("#evict-confirm");
  await closed; // Blue's twin was evicted...
  await page.selectOption("#cluster", "");
  await page.waitForFunction(() => document.querySelectorAll("#rows tr:not(.removed)").length === 1);
  assert.deepEqual(await visible(), ["default"]); // ...and the default cluster's is untouched.
  inDefault.socket.destroy();
  await page.waitForFunction(() => document.querySelector("#count").textContent === "0");
});

test("a node whose health changes stays listed", async () => {
  // Nothing listens on its port: the probe turns it UNRESPONSIVE (a HEALTH_CHANGED event).
  const { socket } = await register(ports.epmd, "sick", 1);
  await row("sick").waitFor({ timeout: 2000 });
  const end = Date.now() + 10000;
  let health = "";
  while (Date.now() < end && health !== "UNRESPONSIVE") {
    const res = await fetch("http://127.0.0.1:" + ports.http + "/v1/nodes/sick");
    health = ((await res.json()).health || {}).status || "";
    await new Promise((r) => setTimeout(r, 100)); // Polling with a deadline.
  }
  assert.equal(health, "UNRESPONSIVE");
  await page.waitForFunction(() => document.querySelector("#revision").textContent !== "");
  assert.equal(await row("sick").count(), 1, "the health event did not remove the row");
  socket.destroy();
  await row("sick").waitFor({ state: "detached", timeout: 2000 });
});

test("the page reconnects after the daemon restarts", async () => {
  const before = await register(ports.epmd, "old", 8001);
  await row("old").waitFor({ timeout: 2000 });
  await stopDaemon();
  before.socket.destroy();
  await page.waitForSelector('body:not([data-connection="live"])', { timeout: 5000 });
  daemon = startDaemon();
  await waitPort(ports.epmd);
  const fresh = await register(ports.epmd, "fresh", 8002);
  await row("fresh").waitFor({ timeout: 10000 });
  await page.waitForSelector('body[data-connection="live"]', { timeout: 5000 });
  assert.equal(await row("old").count(), 0, "nothing stale from the old daemon");
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const b = await register(ports.epmd, "caf\u00e9-\u2603", 8003);
  await row("caf\u00e9-\u2603").waitFor({ timeout: 2000 });
  const shot = path.join(ARTIFACTS, "page.png");
  await page.screenshot({ path: shot, fullPage: true });
  console.log("screenshot: " + shot);
  fresh.socket.destroy();
  b.socket.destroy();
  assert.deepEqual(consoleErrors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)), []);
});
