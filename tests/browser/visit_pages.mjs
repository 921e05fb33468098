// Visits dashboard pages in a real browser (Debian's chromium driven by playwright-core) and
// reports what a person would see, as JSON on stdout; the test (test_dashboard.py) asserts on it.
//
//   node tests/browser/visit_pages.mjs --base http://127.0.0.1:8080 --out build/screenshots \
//        --pages '[{"name":"releases","hash":"#/releases","wait":"table"}]'
//
// A page's spec: name, hash, wait (a CSS selector that shows it is drawn), wait_text (text the
// page must come to show without a reload, or a list of alternatives; wait_seconds), phone (also at 390x844), keyboard
// (Tab from the top to the first section link, Enter on it), steady (once the queue is quiet, a
// link in main keeps its focus across polls that bring nothing new).
//
// Per page: the console errors and uncaught exceptions, failed requests, the h1 and the page's
// text, each canvas (size, and whether anything is drawn on it), the number of SVG images, the
// document's width against the viewport's (nothing sticks out sideways), and a screenshot
// (NAME.png, and NAME-phone.png at 390x844 when the page asks for `phone`).
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "..", "web", "package.json"));
const { chromium } = require("playwright-core");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const base = arg("base");
const out = arg("out", ".");
const pages = JSON.parse(arg("pages", "[]"));
const executablePath = process.env.TTFB_LAB_CHROMIUM || "/usr/bin/chromium";
if (!base || !pages.length) {
  console.error("usage: visit_pages.mjs --base URL --out DIR --pages JSON");
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // As root in a container, without Google's services on a closed network.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});

async function visit(spec, viewport, suffix) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const consoleErrors = [], pageErrors = [], failedRequests = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("requestfailed", (r) => failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) failedRequests.push(`${r.url()}: HTTP ${r.status()}`); });
  const result = { name: spec.name + suffix, hash: spec.hash };
  try {
    await page.goto(base + "/" + spec.hash, { waitUntil: "load" });
    await page.waitForSelector(spec.wait || "main h1", { timeout: 15000 });
    if (spec.wait_text) {
      // The page was opened while work ran: it must update by itself until this text shows.
      result.text_before = await page.evaluate(() => document.querySelector("main").innerText);
      const any = [spec.wait_text].flat();
      await page.waitForFunction((ts) => ts.some((t) => document.querySelector("main").innerText.includes(t)), any,
        { timeout: (spec.wait_seconds || 120) * 1000, polling: 250 });
      await page.waitForSelector(spec.wait || "main h1", { timeout: 15000 });
    }
    await page.waitForTimeout(300);  // the plots draw right after the page's content
    Object.assign(result, await page.evaluate(() => {
      const canvases = [...document.querySelectorAll("main canvas")].map((c) => {
        let drawn = false;
        try {
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) { drawn = true; break; }
        } catch (e) { drawn = false; }
        return { width: c.width, height: c.height, drawn };
      });
      return {
        h1: document.querySelector("main h1")?.textContent.trim() || "",
        title: document.title,
        text: document.querySelector("main").innerText,
        canvases,
        svgs: document.querySelectorAll("main svg").length,
        plots: document.querySelectorAll("main .uplot").length,
        scroll_width: document.documentElement.scrollWidth,
        viewport_width: window.innerWidth,
      };
    }));
    result.screenshot = path.join(out, `${spec.name}${suffix}.png`);
    await page.screenshot({ path: result.screenshot, fullPage: true });
    if (spec.steady) {
      // A live page polls; a poll that brings nothing new must leave the page alone (the
      // element a keyboard user is on stays the same element, still on the page). "Nothing
      // new" needs a quiet queue: work still finishing (a confirmation, a remainder probe)
      // rightly redraws the fleet page, so wait until no job is queued or running, and for
      // one poll after that, before taking the focus.
      await page.waitForFunction(async () => {
        const r = await fetch("/api/v1/jobs?limit=1");
        const { counts } = await r.json();
        return !counts.queued && !counts.running;
      }, null, { timeout: 180000, polling: 1000 });
      await page.waitForTimeout(3500);
      // The page's requests answer in a different order at each poll (one of them held back by
      // turns), as they may on a busy server; the same answers in another order are nothing new.
      let held = 0;
      await page.route((url) => url.pathname.startsWith("/api/v1/"), async (route) => {
        if (held++ % 3 === 0) await new Promise((r) => setTimeout(r, 400));
        await route.continue();
      });
      await page.focus("main a");
      await page.evaluate(() => {
        window.__focused = document.activeElement;
        window.__changes = [];
        new MutationObserver((records) => {
          for (const r of records) {
            if (window.__changes.length < 5) window.__changes.push(`${r.type} on ${r.target.nodeName}: ${(r.target.textContent || "").slice(0, 200)}`);
          }
        }).observe(document.querySelector("main"), { subtree: true, childList: true, characterData: true, attributes: true });
      });
      await page.waitForTimeout(7000);  // two polls
      result.steady = await page.evaluate(() => window.__focused === document.activeElement && window.__focused.isConnected);
      // What changed, when something did: the test prints it with the failure.
      result.steady_changes = await page.evaluate(() => ({ changes: window.__changes, focused: document.activeElement?.outerHTML?.slice(0, 200) }));
    }
    if (spec.keyboard) {
      // From the top of the page, Tab reaches the skip link, then the brand, then the first
      // section link; Enter on a section link goes there.
      await page.keyboard.press("Tab");
      await page.keyboard.press("Tab");
      await page.keyboard.press("Tab");
      result.focused = await page.evaluate(() => document.activeElement?.textContent.trim());
      await page.keyboard.press("Enter");
      await page.waitForTimeout(500);
      result.after_enter = await page.evaluate(() => location.hash);
    }
  } catch (e) {
    result.failure = String(e);
  }
  result.console_errors = consoleErrors;
  result.page_errors = pageErrors;
  result.failed_requests = failedRequests;
  await context.close();
  return result;
}

const results = [];
for (const spec of pages) {
  results.push(await visit(spec, { width: 1280, height: 900 }, ""));
  if (spec.phone) results.push(await visit(spec, { width: 390, height: 844 }, "-phone"));
}
await browser.close();
process.stdout.write(JSON.stringify(results, null, 1) + "\n");
