// What every browser test file shares: free ports, a real epmdx process with its own tokens
// file, registrations over the epmd wire, real Erlang nodes, headless Chromium with its
// console errors and dialogs collected, screenshots, and waiting for a condition.
//
//   EPMDX_BIN=build/epmdx [EPMDX_WEB_ROOT=web] node --test tests/browser/<file>.test.mjs

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const EPMDX = process.env.EPMDX_BIN || path.join(here, "../../build/epmdx");
export const ARTIFACTS = process.env.EPMDX_ARTIFACTS || path.join(here, "artifacts");
export const TOKEN = "browser-admin-token-0123456789";
export const READ_TOKEN = "browser-read-token-0123456789";

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/// Polls `fn` until it returns a truthy value (returned) or `ms` pass (throws with `what`).
export async function eventually(fn, ms = 5000, what = "condition") {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await delay(25); // Polling with a deadline.
  }
  throw new Error("timed out after " + ms + " ms waiting for " + what + " (last: " + last + ")");
}

// A free port below the kernel's ephemeral range (tests that hold many client sockets take
// ports from that range, and a daemon that finds its port taken exits 0 quietly, as OTP's).
// Ports handed out by this process are never handed out twice.
const given = new Set();
export async function freePort() {
  let low = 32768;
  try {
    low = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
  } catch (e) { /* keep the default */ }
  for (let i = 0; i < 1000; i++) {
    const port = 10000 + Math.floor(Math.random() * (low - 10001));
    if ((port >= 4369 && port <= 4371) || given.has(port)) continue;
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "::", () => s.close(() => resolve(true)));
    });
    if (free) {
      given.add(port);
      return port;
    }
  }
  throw new Error("no free port");
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1", () => { c.destroy(); resolve(true); });
    c.on("error", () => resolve(false));
  });
}

export async function waitPort(port, ms = 5000) {
  await eventually(() => canConnect(port), ms, "port " + port + " to open");
}

// Children that die with this process (SIGKILL on its exit, e.g. a ctest timeout), so that no
// daemon or Erlang node outlives its test on a shared machine: util-linux's setpriv sets the
// parent-death signal and execs (the pid stays the program's).
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((f) => fs.existsSync(f));
export function spawnTied(cmd, args, opts) {
  return SETPRIV ? spawn(SETPRIV, ["--pdeathsig", "KILL", cmd, ...args], opts) : spawn(cmd, args, opts);
}

/// A real epmdx process on free ports, with its own tokens file (TOKEN: read+evict,
/// READ_TOKEN: read). `args` are extra options (e.g. "--probe-interval=1").
export class Daemon {
  constructor(args = [], { clusters = [] } = {}) {
    this.args = args;
    this.clusterNames = clusters;
    this.proc = null;
    this.stderr = "";
  }

  async start() {
    if (!this.epmdPort) {
      this.epmdPort = await freePort();
      this.httpPort = await freePort();
      this.clusterPorts = {};
      for (const c of this.clusterNames) this.clusterPorts[c] = await freePort();
      this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "epmdx-browser-"));
      this.tokensFile = path.join(this.dir, "tokens");
      fs.writeFileSync(this.tokensFile,
        TOKEN + " read evict name=browser-admin\n" + READ_TOKEN + " read name=browser-reader\n");
    }
    const argv = ["-port", String(this.epmdPort), "--grpc-listen=off",
      "--http-listen=127.0.0.1:" + this.httpPort, "--tokens-file=" + this.tokensFile,
      ...Object.entries(this.clusterPorts).map(([c, p]) => "--cluster=" + c + "=" + p),
      ...this.args];
    if (process.env.EPMDX_WEB_ROOT) argv.push("--web-root=" + process.env.EPMDX_WEB_ROOT);
    this.proc = spawnTied(EPMDX, argv, { stdio: ["ignore", "ignore", "pipe"] });
    this.proc.stderr.on("data", (d) => { this.stderr += d; });
    const exited = new Promise((r) => this.proc.once("exit", () => r("exited")));
    const up = (async () => {
      await waitPort(this.epmdPort);
      await waitPort(this.httpPort);
      return "up";
    })();
    const how = await Promise.race([up, exited]);
    assert.equal(how, "up", "epmdx exited at start: " + this.stderr);
    return this;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await exited;
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  async close() {
    await this.stop();
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  get url() { return "http://127.0.0.1:" + this.httpPort + "/"; }

  /// A REST call with the admin token; resolves with {status, body (parsed JSON or text)}.
  async api(pathAndQuery, { method = "GET", body, token = TOKEN } = {}) {
    const res = await fetch("http://127.0.0.1:" + this.httpPort + pathAndQuery, {
      method,
      headers: { authorization: "Bearer " + token, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = text;
    try { parsed = JSON.parse(text); } catch (e) { /* not JSON */ }
    return { status: res.status, body: parsed };
  }

  async host() {
    const { body } = await this.api("/v1/clusters");
    return typeof body.host === "string" ? body.host : "";
  }

  async metric(name, labelNeedle = "") {
    const { body } = await this.api("/metrics");
    let sum = 0;
    for (const line of String(body).split("\n")) {
      if (line.startsWith(name) && line.includes(labelNeedle)) sum += Number(line.split(" ").pop());
    }
    return sum;
  }
}

/// An ALIVE2_REQ over a raw socket (node type 77 normal, 72 hidden); resolves with
/// {socket, reply, ok, result} once epmdx answered. The registration lives as long as the
/// socket.
export function register(epmdPort, name, nodePort, { type = 77 } = {}) {
  return new Promise((resolve, reject) => {
    const nameBytes = Buffer.from(name, "utf8");
    const body = Buffer.alloc(13 + nameBytes.length);
    body.writeUInt8(120, 0);
    body.writeUInt16BE(nodePort, 1);
    body.writeUInt8(type, 3);
    body.writeUInt8(0, 4);
    body.writeUInt16BE(6, 5);
    body.writeUInt16BE(5, 7);
    body.writeUInt16BE(nameBytes.length, 9);
    nameBytes.copy(body, 11);
    body.writeUInt16BE(0, 11 + nameBytes.length);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(body.length);
    const socket = net.connect(epmdPort, "127.0.0.1", () => socket.write(Buffer.concat([len, body])));
    socket.once("data", (reply) => resolve({ socket, reply, result: reply[1], ok: reply[1] === 0 }));
    socket.once("error", reject);
    socket.once("close", () => reject(new Error("closed without a reply: " + name)));
  });
}

/// Registers and asserts success.
export async function registerOk(epmdPort, name, nodePort, opts) {
  const r = await register(epmdPort, name, nodePort, opts);
  assert.equal(r.result, 0, "ALIVE2 for " + name + " refused");
  r.socket.on("error", () => {}); // An eviction may reset it.
  return r;
}

/// A TCP port that accepts connections and answers with the start of an Erlang distribution
/// handshake never: it reads and keeps quiet, so a probe of it fails (an unresponsive VM).
/// Nothing listening at all is the simpler kind: port 1.
export const DEAD_PORT = 1;

/// A real Erlang node (`erl -sname NAME`) registered with the daemon's epmd port, with a
/// temporary HOME and a unique cookie. `pid` is the beam.smp pid (erl execs it).
export class ErlNode {
  /** `name` as given to -sname (or to -name with { flag: "-name" }, e.g. "lg@127.0.0.1"). */
  constructor(name, epmdPort, { flag = "-sname" } = {}) {
    this.name = name.split("@")[0]; // What it registers with epmd.
    this.home = fs.mkdtempSync(path.join(os.tmpdir(), "epmdx-browser-erl-"));
    this.cookie = "browser" + process.pid + Math.random().toString(36).slice(2);
    this.stderr = "";
    this.proc = spawnTied("erl", [flag, name, "-setcookie", this.cookie, "-noshell",
      "-start_epmd", "false", "-epmd_port", String(epmdPort),
      "-eval", "timer:sleep(180000), halt()."],
    { env: { ...process.env, HOME: this.home, ERL_EPMD_PORT: String(epmdPort) },
      stdio: ["ignore", "ignore", "pipe"] });
    this.proc.stderr.on("data", (d) => { this.stderr += d; });
    this.pid = this.proc.pid;
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGKILL");
      await exited;
    }
    fs.rmSync(this.home, { recursive: true, force: true });
  }
}

/// Waits until the daemon lists `name` (over REST); returns the node.
export async function waitListed(daemon, name, ms = 20000) {
  return eventually(async () => {
    const { body } = await daemon.api("/v1/nodes/" + encodeURIComponent(name));
    return body && body.name === name ? body : null;
  }, ms, name + " to be listed");
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/// The usual file's set-up: one daemon (`args`, `daemonOpts`), one browser, one page;
/// `stopPage` ends them (whatever was started).
export async function startPage(args = [], daemonOpts = {}, pageOpts = {}) {
  const daemon = await new Daemon(args, daemonOpts).start();
  const browser = await launchBrowser();
  const p = await openPage(browser, daemon, pageOpts);
  return { daemon, browser, p };
}

export async function stopPage({ daemon, browser } = {}) {
  if (browser) await browser.close();
  if (daemon) await daemon.close();
}

/// A page with its console errors, page errors and JS dialogs (alert/prompt/confirm) collected.
/// Dialogs are dismissed so they never block; tests assert there were none.
export async function openPage(browser, daemon, { viewport = { width: 1280, height: 800 },
  colorScheme, waitLive = true } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  const errors = [];
  const dialogs = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text() + (m.location().url ? " [" + m.location().url + "]" : ""));
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("dialog", (d) => { dialogs.push(d.type() + ": " + d.message()); d.dismiss().catch(() => {}); });
  await page.goto(daemon.url);
  if (waitLive) await page.waitForSelector('body[data-connection="live"]', { timeout: 5000 });
  return { context, page, errors, dialogs };
}

// The lines Chromium logs while the daemon is down (the page's reconnect attempts).
const CONNECTION_REFUSED = /net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|CONNECTION_CLOSED|EMPTY_RESPONSE|INCOMPLETE_CHUNKED_ENCODING)/;

/// No console error, no page error, no JS dialog; `daemonWasDown` tolerates only the
/// connection-refused lines of reconnect attempts.
/// `allow`: more expected lines (e.g. the 401 of a request made with a wrong token on purpose).
export function assertClean({ errors, dialogs }, { daemonWasDown = false, allow } = {}) {
  let left = daemonWasDown ? errors.filter((e) => !CONNECTION_REFUSED.test(e)) : errors;
  if (allow) left = left.filter((e) => !allow.test(e));
  assert.deepEqual(left, [], "console errors");
  assert.deepEqual(dialogs, [], "JS dialogs (prompt/alert/confirm)");
}

export async function screenshot(page, file, opts = {}) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const where = path.join(ARTIFACTS, file);
  await page.screenshot({ path: where, ...opts });
  console.log("screenshot: " + where);
  return where;
}

// Locators of the contract (page-contract.md).
const cssString = (s) => '"' + s.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';

/// The live (not being removed) row of `name` (in `cluster` when given).
export const row = (page, name, cluster) => page.locator("#rows tr[data-name=" + cssString(name) + "]" +
  (cluster ? "[data-cluster=" + cssString(cluster) + "]" : "") + ":not(.removed)");

/// Every live row's attribute `attr` (or a cell's text with `cell`), in DOM order, visible only.
export function visibleRows(page, { attr = "data-name", cell } = {}) {
  return page.locator("#rows tr[data-name]:not(.removed)").evaluateAll((trs, [a, c]) =>
    trs.filter((tr) => !tr.hidden).map((tr) => (c ? tr.querySelector(c).textContent : tr.getAttribute(a))),
  [attr, cell]);
}

export const text = async (page, selector) => (await page.textContent(selector)).trim();

/// Waits until `selector`'s trimmed text equals `want`.
export async function waitText(page, selector, want, ms = 5000) {
  await page.waitForFunction(([s, w]) => {
    const el = document.querySelector(s);
    return el && el.textContent.trim() === w;
  }, [selector, String(want)], { timeout: ms });
}

/// Waits until `selector`'s text matches `re`.
export async function waitMatch(page, selector, re, ms = 5000) {
  try {
    await page.waitForFunction(([s, src, flags]) => {
      const el = document.querySelector(s);
      return el && new RegExp(src, flags).test(el.textContent);
    }, [selector, re.source, re.flags], { timeout: ms });
  } catch (e) {
    const got = await page.textContent(selector).catch(() => "(absent)");
    throw new Error(selector + " never matched " + re + "; it says " + JSON.stringify(got));
  }
}

/// Waits until the visible rows' names (sorted) are `want`.
export async function waitShown(page, want, ms = 3000) {
  const w = JSON.stringify([...want].sort());
  let got;
  try {
    await eventually(async () => (got = JSON.stringify((await visibleRows(page)).sort())) === w, ms);
  } catch (e) {
    throw new Error("visible rows " + got + ", expected " + w);
  }
}

/// Evicts the row of `name` through the page's evict dialog; returns when the dialog closed.
export async function evictFromRow(page, name, { reason = "", hold = "0", token = TOKEN, cluster } = {}) {
  await row(page, name, cluster).locator("button.evict").click();
  await page.waitForSelector("#evict-dialog[open]");
  if (await page.locator("#evict-token").isVisible()) await page.fill("#evict-token", token);
  if (reason) await page.fill("#evict-reason", reason);
  await page.selectOption("#evict-hold", hold);
  await page.click("#evict-confirm");
  await page.waitForSelector("#evict-dialog[open]", { state: "detached", timeout: 5000 })
    .catch(() => page.waitForFunction(() => !document.querySelector("#evict-dialog").open));
}

// ---- A fleet relay (epmdx-fleet) over real daemons -----------------------------------

/// The relay binary: EPMDX_FLEET_BIN, else next to the daemon under test (build/epmdx-fleet).
export const EPMDX_FLEET = process.env.EPMDX_FLEET_BIN || path.join(path.dirname(EPMDX), "epmdx-fleet");

/// A daemon whose gRPC API also listens (127.0.0.1, a free port: `grpcPort`), for a relay to
/// follow with TOKEN. Its ports stay the same across restarts (`start()` again).
export async function sourceDaemon(args = [], opts = {}) {
  const grpcPort = await freePort();
  const daemon = new Daemon([...args, "--grpc-listen=127.0.0.1:" + grpcPort], opts);
  daemon.grpcPort = grpcPort;
  await daemon.start();
  await waitPort(grpcPort);
  return daemon;
}

/// kill -9: the daemon ends without a word to anyone; its registrations' sockets close.
export async function killDaemon(daemon) {
  const proc = daemon.proc;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGKILL");
  await exited;
}

/// A real epmdx-fleet relay following `sources` (daemons from sourceDaemon, by their gRPC
/// address, with TOKEN from a --source-token-file), its own API on free ports, with its own
/// tokens file (TOKEN: read+evict, READ_TOKEN: read). `args` are extra options.
export class Relay {
  constructor(sources, args = []) {
    this.sources = sources;
    this.args = args;
    this.proc = null;
    this.stderr = "";
  }

  async start() {
    if (!this.httpPort) {
      this.grpcPort = await freePort();
      this.httpPort = await freePort();
      this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "epmdx-browser-fleet-"));
      this.tokensFile = path.join(this.dir, "tokens");
      fs.writeFileSync(this.tokensFile,
        TOKEN + " read evict name=browser-admin\n" + READ_TOKEN + " read name=browser-reader\n",
        { mode: 0o600 });
      this.sourceTokenFile = path.join(this.dir, "source-token");
      fs.writeFileSync(this.sourceTokenFile, TOKEN + "\n", { mode: 0o600 });
    }
    assert.ok(fs.existsSync(EPMDX_FLEET), "the relay binary is missing: " + EPMDX_FLEET +
      " (build the epmdx-fleet target, or set EPMDX_FLEET_BIN)");
    const argv = [...this.sources.map((d) => "--source=127.0.0.1:" + d.grpcPort),
      "--source-token-file=" + this.sourceTokenFile,
      "--grpc-listen=127.0.0.1:" + this.grpcPort, "--http-listen=127.0.0.1:" + this.httpPort,
      "--tokens-file=" + this.tokensFile, ...this.args];
    if (process.env.EPMDX_WEB_ROOT) argv.push("--web-root=" + process.env.EPMDX_WEB_ROOT);
    this.proc = spawnTied(EPMDX_FLEET, argv, { stdio: ["ignore", "ignore", "pipe"] });
    this.proc.stderr.on("data", (d) => { this.stderr += d; });
    const exited = new Promise((r) => this.proc.once("exit", () => r("exited")));
    const up = (async () => {
      await waitPort(this.httpPort);
      await waitPort(this.grpcPort);
      return "up";
    })();
    const how = await Promise.race([up, exited]);
    assert.equal(how, "up", "epmdx-fleet exited at start: " + this.stderr);
    return this;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGTERM");
    await exited;
  }

  async close() {
    await this.stop();
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  get url() { return "http://127.0.0.1:" + this.httpPort + "/"; }

  /// A REST call with the admin token, as Daemon.api.
  api(pathAndQuery, opts) { return Daemon.prototype.api.call(this, pathAndQuery, opts); }

  /// The relay's sources by the address it follows them at: {"127.0.0.1:PORT": Source}.
  async sourcesByAddress() {
    const { status, body } = await this.api("/v1/sources");
    assert.equal(status, 200, "GET /v1/sources on the relay: " + JSON.stringify(body));
    return Object.fromEntries((body.sources || []).map((s) => [s.address, s]));
  }
}

/// The live (not being removed) row of `name` from the relay's source `source`.
export const rowOn = (page, name, source) => page.locator("#rows tr[data-name=" + cssString(name) +
  "][data-source=" + cssString(source) + "]:not(.removed)");
