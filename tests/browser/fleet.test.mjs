// The page on a fleet relay (epmdx-fleet) following two real daemons: fleet mode, a Source
// column, the same name on two sources as two rows, a strip of LIVE chips with counts, the
// source filter (select, chip, text, sort), an eviction with a hold and its lift that name
// their source; then one
// daemon killed with SIGKILL: its rows turn stale and its chip STALE within 5 s, with the
// partial-view band; restarted, it is LIVE again and its dead registrations are gone.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  Relay, TOKEN, assertClean, killDaemon, launchBrowser, openPage, registerOk, rowOn, row,
  screenshot, sourceDaemon, visibleRows, waitText, eventually,
} from "./support.mjs";

let a, b, relay, browser, p;
let A, B; // The relay's names for the two daemons.
const regs = [];

const chip = (name) => p.page.locator('#sources-list button.source-chip[data-source="' + name + '"]');
const chipState = (name) => chip(name).getAttribute("data-state");
const sourcesOfRows = () => visibleRows(p.page, { attr: "data-source" });
const literally = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); // A name inside a RegExp.

before(async () => {
  a = await sourceDaemon();
  b = await sourceDaemon();
  relay = await new Relay([a, b], ["--gone-grace=60s"]).start();
  // Both followed (LIVE) before the page opens: then their names are what they say they are.
  const at = (d) => "127.0.0.1:" + d.grpcPort;
  let seen;
  const live = await eventually(async () => {
    const s = seen = await relay.sourcesByAddress();
    return s[at(a)] && s[at(b)] && s[at(a)].state === "LIVE" && s[at(b)].state === "LIVE" ? s : null;
  }, 10000, "the relay to follow both daemons").catch((e) => {
    throw new Error(e.message + ": " + JSON.stringify(seen) + "\nrelay: " + relay.stderr);
  });
  A = live[at(a)].name;
  B = live[at(b)].name;
  assert.notEqual(A, B, "two daemons are two sources, by name");
  browser = await launchBrowser();
  p = await openPage(browser, relay);
});

after(async () => {
  for (const r of regs) r.socket.destroy();
  if (browser) await browser.close();
  if (relay) await relay.close();
  for (const d of [a, b]) if (d) await d.close();
});

test("fleet mode: a Source column, the same name on two sources, two LIVE chips", async () => {
  await p.page.waitForSelector('body[data-fleet="true"]', { timeout: 5000 });
  regs.push(await registerOk(a.epmdPort, "twin", 28001));
  regs.push(await registerOk(b.epmdPort, "twin", 28002));
  regs.push(await registerOk(a.epmdPort, "solo", 28003));
  await waitText(p.page, "#count", "3");
  assert.equal(await row(p.page, "twin").count(), 2, "one row per source");
  assert.deepEqual(await rowOn(p.page, "twin", A).locator("td.source").allTextContents(), [A]);
  assert.deepEqual(await rowOn(p.page, "twin", B).locator("td.source").allTextContents(), [B]);
  assert.equal(await rowOn(p.page, "twin", A).getAttribute("data-cluster"), "default");
  assert.ok(await p.page.locator('#nodes th[data-sort="source"]').isVisible(), "the Source column");
  // The strip: one chip per source, LIVE, with its node count; the select counts the same.
  await eventually(async () => (await chip(A).locator(".source-count").textContent()) === "2" &&
    (await chip(B).locator(".source-count").textContent()) === "1", 3000, "chip counts 2 and 1");
  assert.equal(await p.page.locator("#sources-list button.source-chip").count(), 2);
  assert.deepEqual([await chipState(A), await chipState(B)], ["LIVE", "LIVE"]);
  assert.match(await chip(A).textContent(), new RegExp(literally(A) + "\\s*LIVE\\s*2"));
  const byName = [[A, 2], [B, 1]].sort((x, y) => x[0].localeCompare(y[0]));
  assert.deepEqual(await p.page.locator("#source option").allTextContents(),
    ["All sources (3)", ...byName.map(([n, c]) => n + " (" + c + ")")]);
  assert.equal(await p.page.locator("#coverage").isVisible(), false, "every source reachable");
  await screenshot(p.page, "fleet-live.png", { fullPage: true });
});

test("the source filter: the select, a chip (and again for all), the text filter, the sort", async () => {
  await p.page.selectOption("#source", B);
  await waitText(p.page, "#count", "1");
  assert.deepEqual(await sourcesOfRows(), [B]);
  await chip(A).click();
  await waitText(p.page, "#count", "2");
  assert.equal(await p.page.inputValue("#source"), A);
  assert.equal(await chip(A).getAttribute("aria-pressed"), "true");
  assert.equal(await chip(B).getAttribute("aria-pressed"), "false");
  assert.deepEqual(await sourcesOfRows(), [A, A]);
  await chip(A).click(); // The chip shown alone, pressed again: every source.
  await waitText(p.page, "#count", "3");
  assert.equal(await p.page.inputValue("#source"), "");
  // The text filter reads the source too: the longer name is in no other source's name.
  const longer = A.length >= B.length ? A : B;
  await p.page.fill("#filter", longer.toUpperCase());
  await eventually(async () => JSON.stringify(await sourcesOfRows()) ===
    JSON.stringify(longer === A ? [A, A] : [B]), 2000, "the rows of " + longer);
  await p.page.fill("#filter", "");
  await eventually(async () => (await sourcesOfRows()).length === 3, 2000, "three rows again");
  const sortButton = p.page.locator('#nodes th[data-sort="source"] button');
  await sortButton.click();
  assert.equal(await p.page.getAttribute('#nodes th[data-sort="source"]', "aria-sort"), "ascending");
  const up = [A, A, B].sort((x, y) => x.localeCompare(y));
  await eventually(async () => JSON.stringify(await sourcesOfRows()) === JSON.stringify(up), 2000, "sorted by source");
  await sortButton.click();
  await eventually(async () => JSON.stringify(await sourcesOfRows()) === JSON.stringify([...up].reverse()),
    2000, "sorted by source, descending");
});

test("evict with a hold from a row, then lift it: both name the row's source, the other twin stays", async () => {
  const request = p.page.waitForRequest((r) => r.method() === "DELETE" && r.url().includes("/v1/nodes/twin"));
  const closed = new Promise((r) => regs[1].socket.once("close", r)); // b's twin
  await rowOn(p.page, "twin", B).locator("button.evict").click();
  await p.page.waitForSelector("#evict-dialog[open]");
  assert.equal(await p.page.textContent("#evict-source"), B);
  assert.ok(await p.page.locator("#evict-source-line").isVisible(), "the dialog names the source");
  if (await p.page.locator("#evict-token").isVisible()) await p.page.fill("#evict-token", TOKEN);
  await p.page.selectOption("#evict-hold", "60");
  await p.page.click("#evict-confirm");
  const url = new URL((await request).url());
  assert.equal(url.searchParams.get("source"), B);
  assert.equal(url.searchParams.get("cluster"), "default");
  await closed; // The relay evicted b's registration on b...
  await rowOn(p.page, "twin", B).waitFor({ state: "detached", timeout: 3000 });
  assert.equal(await rowOn(p.page, "twin", A).count(), 1, "...and a's twin is untouched");
  // The hold is b's: tagged with its source, and lifted there.
  const held = p.page.locator('#holds-list li.hold[data-name="twin"][data-source="' + B + '"]');
  await held.waitFor({ timeout: 3000 });
  assert.equal(await held.locator(".source-tag").textContent(), B);
  const lift = p.page.waitForRequest((r) => r.method() === "DELETE" && r.url().includes("/v1/holds/twin"));
  await held.locator("button.lift").click();
  assert.equal(new URL((await lift).url()).searchParams.get("source"), B);
  await held.waitFor({ state: "detached", timeout: 3000 });
  regs[1] = await registerOk(b.epmdPort, "twin", 28002); // b has its twin again (no hold left).
  await rowOn(p.page, "twin", B).waitFor({ timeout: 3000 });
});

test("kill -9 one daemon: its rows stale and its chip STALE within 5 s, the band says so", async () => {
  const killedAt = Date.now();
  await killDaemon(b);
  await p.page.waitForSelector('#rows tr.stale[data-name="twin"][data-source="' + B + '"]', { timeout: 5000 });
  await eventually(async () => (await chipState(B)) === "STALE", 5000 - (Date.now() - killedAt), B + "'s chip STALE");
  const staleRow = rowOn(p.page, "twin", B);
  assert.match(await staleRow.getAttribute("title"),
    new RegExp("^" + literally(B) + " is STALE since \\d\\d:\\d\\d:\\d\\d: last known registration$"));
  assert.equal(await staleRow.locator(".stale-badge").textContent(), "stale");
  assert.equal(await staleRow.locator("button.evict").isDisabled(), true, "a stale row cannot be evicted");
  // a's rows are current.
  assert.equal(await p.page.locator('#rows tr.stale[data-source="' + A + '"]').count(), 0);
  assert.equal(await chipState(A), "LIVE");
  // The chip's tooltip is the source's last error as the relay tells it now: it changes while
  // the state does not (the broken stream, then refused reconnects), so pointing at the chip
  // reads it again.
  await chip(B).hover();
  let gone, title;
  await eventually(async () => {
    gone = (await relay.sourcesByAddress())["127.0.0.1:" + b.grpcPort];
    title = await chip(B).getAttribute("title");
    return gone.state === "STALE" && gone.lastError && title.startsWith(gone.lastError + " — ");
  }, 4000, "the chip's title to start with the relay's last_error").catch((e) => {
    throw new Error(e.message + ": relay " + JSON.stringify(gone) + ", title " + JSON.stringify(title));
  });
  // The band: one of two sources reachable, the relay's warning.
  await p.page.locator("#coverage").waitFor({ state: "visible", timeout: 2000 });
  assert.match(await p.page.textContent("#coverage"), /^1 of 2 sources reachable: .*\S/);
  assert.match(await p.page.textContent("#coverage"), new RegExp(literally(B)));
  // The page itself is live: it is the relay that is reached.
  assert.equal(await p.page.getAttribute("body", "data-connection"), "live");
  await screenshot(p.page, "fleet-stale.png", { fullPage: true });
  await p.page.emulateMedia({ colorScheme: "dark" });
  await screenshot(p.page, "fleet-stale-dark.png", { fullPage: true });
  await p.page.emulateMedia({ colorScheme: "light" });
});

test("restarted: LIVE again, its dead registrations gone, a new one current", async () => {
  regs[1].socket.destroy(); // It died with its daemon.
  await b.start();
  await eventually(async () => (await chipState(B)) === "LIVE", 15000, B + "'s chip LIVE again");
  await rowOn(p.page, "twin", B).waitFor({ state: "detached", timeout: 5000 });
  await p.page.locator("#coverage").waitFor({ state: "hidden", timeout: 2000 });
  regs.push(await registerOk(b.epmdPort, "fresh", 28004));
  await rowOn(p.page, "fresh", B).waitFor({ timeout: 3000 });
  assert.equal(await p.page.locator("#rows tr.stale").count(), 0, "no stale row left");
  assert.equal(await rowOn(p.page, "fresh", B).locator("button.evict").isEnabled(), true);
  await waitText(p.page, "#count", "3");
  assertClean(p);
});
