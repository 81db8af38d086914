// Drives the dashboard (GET / on the admin listener) in headless Chromium — the system's
// /usr/bin/chromium through playwright-core, never a downloaded browser. Started by
// test_dashboard.py, which runs the proxy and the backends and sends traffic meanwhile.
//
//   node dashboard.mjs SCENARIO ADMIN_URL [SCREENSHOT]
//
// Scenarios: promote | token | restart. Prints progress lines; "@@ready-for-restart" asks the
// Python side to restart the proxy, which answers with a line on stdin. Exit code 0 = passed.
// Any uncaught page error or console error fails the run (the token and restart scenarios allow
// only the failed-resource messages their 401 / refused connections cause).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [scenario, adminUrl, screenshot] = process.argv.slice(2);
const TOKEN = process.env.DASHBOARD_TOKEN || "";
const ROUTE = process.env.DASHBOARD_ROUTE || "canary-demo";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 15000;

function log(...a) { console.log(`[${scenario}]`, ...a); }
function fail(msg) { throw new Error(msg); }

const stdinLines = createInterface({ input: process.stdin });
const pendingLines = [];
const lineWaiters = [];
stdinLines.on("line", (l) => (lineWaiters.length ? lineWaiters.shift()(l) : pendingLines.push(l)));
function nextLine() {
  return pendingLines.length ? Promise.resolve(pendingLines.shift()) : new Promise((r) => lineWaiters.push(r));
}

const card = `section.card[data-route="${ROUTE}"]`;

async function waitCard(page, phase, step, what) {
  const sel = `${card}[data-phase="${phase}"][data-step="${step}"]`;
  try {
    await page.waitForSelector(sel, { timeout: TIMEOUT });
  } catch (e) {
    const now = await page.$eval(card, (c) => `${c.dataset.phase} step ${c.dataset.step}`).catch(() => "no card");
    fail(`${what}: expected ${phase} at step ${step}, the page shows ${now}`);
  }
}

// The steps list: [{text, cls}] and the index of the current one.
async function steps(page) {
  return page.$$eval(`${card} ol.steps li`, (lis) => lis.map((li) => ({ text: li.textContent, cls: li.className })));
}
async function expectCurrentStep(page, index) {
  const s = await steps(page);
  const current = s.findIndex((x) => x.cls.split(" ").includes("current"));
  if (current !== index) fail(`current step marked at ${current}, expected ${index}: ${JSON.stringify(s)}`);
  for (let i = 0; i < index; i++)
    if (!s[i].cls.includes("done")) fail(`step ${i} not marked done: ${JSON.stringify(s)}`);
  return s;
}

async function cellNumber(page, variant, column) {
  const text = await page.$eval(`${card} tr[data-variant="${variant}"] td:nth-child(${column})`, (td) => td.textContent);
  return parseFloat(text);
}

async function waitTraffic(page) {
  // Both variants get requests at weight 20: their req/s cells turn positive once /api/v1/stats
  // has two samples with traffic between them.
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const s = await cellNumber(page, "stable", 3);
    const c = await cellNumber(page, "canary", 3);
    if (s > 0 && c > 0) return { stable: s, canary: c };
    if (Date.now() > deadline) fail(`no per-variant request rate on the page (stable ${s}, canary ${c})`);
    await page.waitForTimeout(250);
  }
}

async function run(context) {
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  const dialogs = [];
  let allowNetErrors = false;
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    if (scenario === "token" && /status of 401/.test(text)) return;  // the 401 that asks for the token
    if (allowNetErrors && /net::ERR_|Failed to load resource/.test(text)) return;
    problems.push(`console error: ${text}`);
  });
  page.on("dialog", async (d) => {
    dialogs.push({ type: d.type(), message: d.message() });
    log(`dialog ${d.type()}: ${d.message()}`);
    if (d.type() === "prompt") await d.accept(TOKEN);
    else await d.dismiss();
  });

  await page.setViewportSize({ width: 1280, height: 900 });
  const res = await page.goto(adminUrl + "/", { waitUntil: "load" });
  if (!res || res.status() !== 200) fail(`GET / -> ${res && res.status()}`);
  const title = await page.title();
  if (!/canary-proxy/.test(title)) fail(`unexpected title ${title}`);

  // The rollout: paused at step 1 (pause {} after setWeight 20).
  await waitCard(page, "Paused", 1, "initial status");
  const first = await expectCurrentStep(page, 1);
  log("steps:", first.map((x) => x.text).join(" | "));
  const phaseText = await page.$eval(`${card} .phase`, (e) => e.textContent);
  if (phaseText !== "Paused") fail(`phase badge shows ${phaseText}`);
  const canaryText = await page.$eval(`${card} .kv dd:nth-of-type(2)`, (e) => e.textContent);
  if (canaryText !== "green") fail(`canary shown as ${canaryText}`);

  if (scenario === "promote") {
    const rates = await waitTraffic(page);
    log("request rates on the page:", JSON.stringify(rates));
    await page.click(`${card} button[data-action="promote"]`);
    // setWeight 50 runs at once; the timed pause (step 3) then passes by itself.
    await waitCard(page, "Paused", 3, "after promote");
    await expectCurrentStep(page, 3);
    const weight = await page.$eval(`${card} .kv dd:nth-of-type(4)`, (e) => e.textContent);
    if (!weight.startsWith("50")) fail(`set weight shows ${weight}`);
    log("promoted: step 3, weight", weight);
    await waitCard(page, "Paused", 5, "after the timed pause");
    await expectCurrentStep(page, 5);
    log("the timed pause passed without a reload: step 5");
    // Let the charts collect a few more points, then the picture.
    await page.waitForTimeout(3000);
    const polylines = await page.$$eval(`${card} .chart svg polyline`, (p) => p.length);
    if (polylines < 2) fail(`the charts draw ${polylines} lines`);
    const observed = await page.$eval(`${card} [data-field="observed-pct"]`, (e) => e.textContent).catch(() => "");
    log("observed canary share:", observed);
    if (screenshot) {
      await page.screenshot({ path: screenshot, fullPage: true });
      log("screenshot:", screenshot);
    }
  } else if (scenario === "token") {
    await page.click(`${card} button[data-action="promote"]`);
    await waitCard(page, "Paused", 3, "after promote with a token");
    const prompts = dialogs.filter((d) => d.type === "prompt");
    if (prompts.length !== 1) fail(`expected one token prompt, got ${JSON.stringify(dialogs)}`);
    // The token is remembered: the next operation does not ask again.
    await page.click(`${card} button[data-action="pause"]`);
    await page.waitForSelector(`${card} button[data-action="resume"]:enabled`, { timeout: TIMEOUT });
    if (dialogs.length !== 1) fail(`asked again for the token: ${JSON.stringify(dialogs)}`);
    const err = await page.$eval(`${card} .error`, (e) => e.textContent);
    if (err) fail(`error shown: ${err}`);
    log("promote and pause succeeded after one token prompt");
  } else if (scenario === "restart") {
    await page.waitForSelector("#conn.live", { timeout: TIMEOUT });
    allowNetErrors = true;  // refused connections while the proxy is down
    console.log("@@ready-for-restart");
    const answer = await nextLine();
    if (answer.trim() !== "restarted") fail(`unexpected answer ${answer}`);
    // Python promoted through the API after the restart: the page must follow without reload.
    await page.waitForSelector("#conn.live", { timeout: TIMEOUT });
    await waitCard(page, "Paused", 3, "after the restart and an API promote");
    await expectCurrentStep(page, 3);
    log("reconnected after the restart and followed the promote");
  } else {
    fail(`unknown scenario ${scenario}`);
  }
  if (problems.length) fail("browser errors:\n  " + problems.join("\n  "));
}

const userDataDir = mkdtempSync(join(tmpdir(), "canary-dashboard-chromium-"));
let context;
let code = 0;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    ],
    timeout: 30000,
  });
  await run(context);
  log("PASS");
} catch (e) {
  console.error(`[${scenario}] FAIL: ${e && e.stack ? e.stack : e}`);
  code = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
  stdinLines.close();
}
process.exit(code);
