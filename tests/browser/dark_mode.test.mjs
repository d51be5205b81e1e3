// Light and dark: the system's dark preference gives a dark page, and #theme forces light
// or dark whatever the system says (kept in localStorage epmdx.theme).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, launchBrowser, openPage, assertClean } from "./support.mjs";

let daemon, browser;

before(async () => {
  daemon = await new Daemon().start();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (daemon) await daemon.close();
});

// The relative luminance (WCAG) of what is painted behind the page's content.
const luminance = (page) => page.evaluate(() => {
  const parse = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  let rgba = parse(getComputedStyle(document.body).backgroundColor);
  if (rgba.length === 4 && rgba[3] === 0) rgba = parse(getComputedStyle(document.documentElement).backgroundColor);
  if (rgba.length === 4 && rgba[3] === 0) return null; // Nothing painted: the canvas default.
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(rgba[0]) + 0.7152 * lin(rgba[1]) + 0.0722 * lin(rgba[2]);
});

test("the system's dark preference gives a dark page, light a light one", async () => {
  const p = await openPage(browser, daemon);
  await p.page.emulateMedia({ colorScheme: "dark" });
  const dark = await luminance(p.page);
  assert.ok(dark !== null && dark < 0.1, "dark background luminance " + dark);
  await p.page.emulateMedia({ colorScheme: "light" });
  const light = await luminance(p.page);
  assert.ok(light !== null && light > 0.6, "light background luminance " + light);
  assertClean(p);
  await p.context.close();
});

test("#theme cycles auto, light, dark and forces them over the system's", async () => {
  const p = await openPage(browser, daemon, { colorScheme: "dark" });
  assert.equal(await p.page.getAttribute("html", "data-theme"), null, "auto by default");
  await p.page.click("#theme");
  assert.equal(await p.page.getAttribute("html", "data-theme"), "light");
  assert.ok((await luminance(p.page)) > 0.6, "forced light on a dark system");
  assert.equal(await p.page.evaluate(() => localStorage.getItem("epmdx.theme")), "light");
  await p.page.emulateMedia({ colorScheme: "light" });
  await p.page.click("#theme");
  assert.equal(await p.page.getAttribute("html", "data-theme"), "dark");
  assert.ok((await luminance(p.page)) < 0.1, "forced dark on a light system");
  // Kept across a reload.
  await p.page.reload();
  await p.page.waitForSelector('body[data-connection="live"]', { timeout: 5000 });
  assert.equal(await p.page.getAttribute("html", "data-theme"), "dark");
  assert.ok((await luminance(p.page)) < 0.1);
  await p.page.click("#theme");
  assert.equal(await p.page.getAttribute("html", "data-theme"), null, "back to auto");
  assert.ok((await luminance(p.page)) > 0.6, "auto follows the (light) system again");
  assertClean(p);
  await p.context.close();
});
