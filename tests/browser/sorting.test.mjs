// Sorting: every sortable column in both directions with the right aria-sort, newest first
// by default, and the keyboard (Enter, Space on the header's button) sorts as a click does.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, ErlNode, launchBrowser, openPage, registerOk, waitListed, visibleRows,
  eventually, assertClean } from "./support.mjs";

let daemon, browser, p, erl;
const regs = [];
// Name, port, node type, cluster. Ports whose text order differs from their number order;
// nothing listens on them, so the probe makes them unresponsive, the Erlang node is alive.
const plan = [
  ["delta", 100, 77, "default"],
  ["alpha", 2000, 77, "blue"],
  ["charlie", 9, 72, "default"],
  ["bravo", 10, 77, "default"],
];

before(async () => {
  daemon = await new Daemon(["--probe-interval=1"], { clusters: ["blue"] }).start();
  for (const [name, port, type, cluster] of plan) {
    const epmd = cluster === "blue" ? daemon.clusterPorts.blue : daemon.epmdPort;
    regs.push(await registerOk(epmd, name, port, { type }));
  }
  erl = new ErlNode("echo", daemon.epmdPort);
  await waitListed(daemon, "echo");
  browser = await launchBrowser();
  p = await openPage(browser, daemon);
  await p.page.selectOption("#cluster", "");
  // Every row probed at least once: alive or unresponsive, none unknown.
  await eventually(async () => {
    const h = await visibleRows(p.page, { attr: "data-health" });
    return h.length === 5 && h.every((x) => x === "alive" || x === "unresponsive");
  }, 15000, "five probed rows");
});

after(async () => {
  for (const r of regs) r.socket.destroy();
  if (erl) await erl.stop();
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

const ariaSorts = (page) => page.locator("#nodes th[data-sort]").evaluateAll(
  (ths) => Object.fromEntries(ths.map((th) => [th.dataset.sort, th.getAttribute("aria-sort")])));

// The page may re-render on the next frame: wait (briefly) for the aria-sort it must reach.
async function assertAria(page, key, dir) {
  let all;
  const right = () => Object.entries(all).every(([k, v]) => v === (k === key ? dir : "none"));
  await eventually(async () => { all = await ariaSorts(page); return right(); }, 2000, "aria-sort")
    .catch(() => assert.fail("aria-sort when sorted by " + key + " " + dir + ": " + JSON.stringify(all)));
}

// What each column is sorted by, read from the rows (the DOM and the API's registration times).
async function keysOf(page, key) {
  switch (key) {
    case "name": return visibleRows(page);
    case "cluster": return visibleRows(page, { attr: "data-cluster" });
    case "port": return (await visibleRows(page, { cell: "td.port" })).map(Number);
    case "type": return visibleRows(page, { attr: "data-type" });
    case "health": return visibleRows(page, { attr: "data-health" });
    case "id": return (await visibleRows(page, { attr: "data-registration-id" })).map(Number);
    case "registered": {
      const { body } = await daemon.api("/v1/nodes");
      const at = Object.fromEntries(body.nodes.map((n) => [n.name, n.registeredAt]));
      return (await visibleRows(page)).map((n) => at[n]);
    }
  }
  throw new Error(key);
}

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const ordered = (xs, dir) => xs.every((x, i) => i === 0 || cmp(xs[i - 1], x) * (dir === "ascending" ? 1 : -1) <= 0);
// Categorical columns (the page may rank health by severity): equal values together, and
// the descending groups are the ascending groups reversed.
const groups = (xs) => xs.filter((x, i) => i === 0 || xs[i - 1] !== x);
const contiguous = (xs) => new Set(groups(xs)).size === groups(xs).length;

test("default: registered, newest first", async () => {
  await assertAria(p.page, "registered", "descending");
  const ids = await keysOf(p.page, "id");
  assert.deepEqual(ids, [...ids].sort((a, b) => b - a), "newest registration first");
  assert.equal((await visibleRows(p.page))[0], "echo", "the Erlang node registered last");
});

for (const key of ["name", "cluster", "port", "type", "health", "registered", "id"]) {
  test("sorting by " + key + ", both directions", async () => {
    const button = p.page.locator('#nodes th[data-sort="' + key + '"] button');
    // Another column first, so this one starts ascending.
    const other = key === "name" ? "port" : "name";
    await p.page.locator('#nodes th[data-sort="' + other + '"] button').click();
    await assertAria(p.page, other, "ascending");
    await button.click();
    await assertAria(p.page, key, "ascending");
    const up = await keysOf(p.page, key);
    assert.equal(up.length, 5);
    await button.click();
    await assertAria(p.page, key, "descending");
    const down = await keysOf(p.page, key);
    if (["cluster", "type", "health"].includes(key)) {
      assert.ok(contiguous(up), key + " ascending keeps equal values together: " + up);
      assert.ok(contiguous(down), key + " descending keeps equal values together: " + down);
      assert.deepEqual(groups(down), groups(up).reverse(), key + ": descending is ascending reversed");
      assert.ok(groups(up).length >= 2, key + " has two values to sort");
    } else {
      assert.ok(ordered(up, "ascending"), key + " ascending: " + up);
      assert.ok(ordered(down, "descending"), key + " descending: " + down);
    }
    if (key === "port") assert.deepEqual(up.slice(0, 4), [9, 10, 100, 2000], "ports sort as numbers");
    if (key === "name") assert.deepEqual(up, ["alpha", "bravo", "charlie", "delta", "echo"]);
  });
}

test("the keyboard sorts: Enter and Space on a header's button", async () => {
  await p.page.locator('#nodes th[data-sort="name"] button').click();
  const port = p.page.locator('#nodes th[data-sort="port"] button');
  await port.focus();
  await p.page.keyboard.press("Enter");
  await assertAria(p.page, "port", "ascending");
  assert.ok(ordered(await keysOf(p.page, "port"), "ascending"));
  await p.page.keyboard.press("Enter");
  await assertAria(p.page, "port", "descending");
  assert.ok(ordered(await keysOf(p.page, "port"), "descending"));
  await p.page.keyboard.press("Space");
  await assertAria(p.page, "port", "ascending");
  assertClean(p);
});
