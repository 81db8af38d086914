// Drives the dashboard (GET / on the admin listener) in headless Chromium — the system's
// /usr/bin/chromium through playwright-core, never a downloaded browser. Started by
// test_dashboard.py, which runs the proxy and the backends and sends traffic meanwhile.
//
//   node dashboard.mjs SCENARIO ADMIN_URL [SCREENSHOT]
//
// Scenarios: promote | token | restart | analysis-fixture | analysis. Prints progress lines;
// "@@ready-for-restart" asks the Python side to restart the proxy, which answers with a line on
// stdin. Exit code 0 = passed.
// analysis-fixture serves the page's status, stream and GET .../analysis from a fixture (through
// Playwright's request interception; /api/v1/stats stays real), so the metrics table and the
// failed-measurement marks are checked value by value against a known analysis block, and then
// with "analysis": null; GET /api/v1/cluster answers as a replica of an etcd fleet, for the
// header's fleet line (leader, store state, then the store lost). analysis runs against a proxy
// whose route has analysis and a failing canary: the page must show the metrics, the abort and
// the marks by itself.
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

// An analysis block mid-run (times relative to `now`) as the proxy writes it: a sequential metric
// and a latency threshold failed, a rate threshold passing, a provider erroring (value 0, which
// the page must not show), a metric not measured yet.
function fixtureAnalysis(now) {
  const t = (s) => new Date(now - s * 1000).toISOString();
  const last = (s, phase, value, extra) => ({ time: t(s), phase, value, stable_value: null, canary_requests: 250,
                                             stable_requests: 1000, message: "", ...extra });
  return {
    run: "fixture-run", phase: "Failed",
    metrics: [
      { name: "errors", kind: "sequential", min: null, max: 1, phase: "Failed", successful: 3, failed: 1, inconclusive: 2,
        errors: 0, last: last(20, "Failed", 0.021, { stable_value: 0.009, message: "errors: canary 2.1 % vs stable 0.9 %" }) },
      { name: "success", kind: "threshold", min: 0.99, max: null, phase: "Running", successful: 5, failed: 1,
        inconclusive: 0, errors: 0, last: last(10, "Successful", 0.995) },
      { name: "p99", kind: "threshold", min: null, max: 250, phase: "Failed", successful: 4, failed: 2, inconclusive: 0,
        errors: 0, last: last(10, "Failed", 312) },
      { name: "apdex", kind: "prometheus", min: 0.9, max: null, phase: "Error", successful: 0, failed: 0, inconclusive: 0,
        errors: 5, last: last(10, "Error", 0, { canary_requests: 0, stable_requests: 0, message: "connect: connection refused" }) },
      { name: "slow", kind: "sequential", min: null, max: 1.5, phase: "Pending", successful: 0, failed: 0, inconclusive: 0,
        errors: 0, last: null },
    ],
  };
}
function fixtureMeasurements(now, analysis) {
  const t = (s) => new Date(now - s * 1000).toISOString();
  const m = (s, metric, phase, value) => ({ time: t(s), metric, phase, value, stable_value: null, canary_requests: 250,
                                            stable_requests: 1000, message: "" });
  // Three distinct failed measurements (errors 20 s ago, success 40 s ago, p99 10 s ago).
  return { route: ROUTE, run: analysis.run,
           measurements: [m(40, "success", "Failed", 0.97), m(20, "errors", "Failed", 0.021),
                          m(10, "success", "Successful", 0.995), m(10, "p99", "Failed", 312),
                          m(10, "apdex", "Error", null)] };
}

async function metricRows(page) {
  return page.$$eval(`${card} .analysis tbody tr[data-metric]`, (trs) => Object.fromEntries(trs.map((tr) =>
    [tr.dataset.metric, { phase: tr.dataset.phase, cells: [...tr.children].map((td) => td.textContent) }])));
}

async function markCounts(page) {
  return page.$$eval(`${card} .chart svg`, (svgs) => svgs.map((s) => s.querySelectorAll('line[data-mark="failed"]').length));
}

async function waitMarks(page, pred, what) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const counts = await markCounts(page);
    if (pred(counts)) return counts;
    if (Date.now() > deadline) fail(`${what}: failed-measurement marks per chart ${JSON.stringify(counts)}`);
    await page.waitForTimeout(250);
  }
}

async function analysisFixture(page) {
  const real = await (await fetch(`${adminUrl}/api/v1/rollouts/${ROUTE}`)).json();
  if ("analysis" in real && real.analysis !== null) fail("the fixture scenario wants a route without analysis");
  const now = Date.now();
  let analysis = fixtureAnalysis(now);
  const status = () => ({ ...real, analysis });
  const json = (body) => ({ status: 200, contentType: "application/json", body: JSON.stringify(body) });
  await page.route("**/api/v1/watch", (r) => r.fulfill({ status: 200, headers: { "content-type": "text/event-stream",
    "cache-control": "no-store" }, body: `event: status\ndata: ${JSON.stringify(status())}\n\n` }));
  await page.route("**/api/v1/rollouts", (r) => r.fulfill(json({ rollouts: [status()] })));
  await page.route(`**/api/v1/rollouts/${ROUTE}`, (r) => r.fulfill(json(status())));
  await page.route(`**/api/v1/rollouts/${ROUTE}/analysis`, (r) =>
    r.fulfill(json(analysis ? fixtureMeasurements(now, analysis) : { route: ROUTE, run: null, measurements: [] })));
  // A replica of a fleet on etcd: the header's fleet line shows the leader and the store.
  let storeState = "connected";
  await page.route("**/api/v1/cluster", (r) => r.fulfill(json({
    replica: "r1", leader: storeState === "connected" ? "r0" : null,
    store: { type: "etcd", state: storeState, revision: 42 },
    replicas: [{ id: "r0", incarnation: "a", last_seen: "2026-12-06T11:40:02Z", config_drift: [] },
               { id: "r1", incarnation: "b", last_seen: "2026-12-06T11:40:03Z", config_drift: [ROUTE] }] })));
  return { setAnalysis: (a) => { analysis = a; }, setStore: (s) => { storeState = s; } };
}

// A proxy whose route has analysis: the page is open on the healthy route; the Python side then
// starts a canary that fails half its requests (and the traffic). The page must show the metrics
// as they are measured, the abort, and the failed measurements on the charts, with no reload.
async function analysisLive(page) {
  await page.waitForSelector(`${card}[data-phase="Healthy"]`, { timeout: TIMEOUT });
  console.log("@@ready-for-canary");
  const answer = await nextLine();
  if (answer.trim() !== "started") fail(`unexpected answer ${answer}`);
  await page.waitForSelector(`${card} .analysis.on tr[data-metric="errors"]`, { timeout: TIMEOUT });
  await page.waitForSelector(`${card}[data-phase="Degraded"]`, { timeout: 2 * TIMEOUT });
  await page.waitForSelector(`${card} .analysis tr[data-phase="Failed"]`, { timeout: TIMEOUT });
  const rows = await metricRows(page);
  log("metrics:", JSON.stringify(rows));
  for (const [name, row] of Object.entries(rows)) {
    if (row.phase === "Failed" && !/\d/.test(row.cells[3])) fail(`metric ${name} failed without a value: ${row.cells}`);
  }
  const message = await page.$eval(`${card} .message`, (e) => e.textContent);
  if (!message.startsWith("AnalysisFailed")) fail(`message reads ${message}`);
  const counts = await waitMarks(page, (c) => c.length === 3 && c.every((n) => n >= 1), "a mark per chart");
  log("aborted by analysis:", message, "- marks per chart", JSON.stringify(counts));
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
  const fixture = scenario === "analysis-fixture" ? await analysisFixture(page) : null;
  const res = await page.goto(adminUrl + "/", { waitUntil: "load" });
  if (!res || res.status() !== 200) fail(`GET / -> ${res && res.status()}`);
  const title = await page.title();
  if (!/canary-proxy/.test(title)) fail(`unexpected title ${title}`);

  if (scenario === "analysis") {
    await analysisLive(page);
    if (problems.length) fail("browser errors:\n  " + problems.join("\n  "));
    return;
  }

  // The rollout: paused at step 1 (pause {} after setWeight 20).
  await waitCard(page, "Paused", 1, "initial status");
  const first = await expectCurrentStep(page, 1);
  log("steps:", first.map((x) => x.text).join(" | "));
  const phaseText = await page.$eval(`${card} .phase`, (e) => e.textContent);
  if (phaseText !== "Paused") fail(`phase badge shows ${phaseText}`);
  const canaryText = await page.$eval(`${card} .kv dd:nth-of-type(2)`, (e) => e.textContent);
  if (canaryText !== "green") fail(`canary shown as ${canaryText}`);

  if (scenario === "promote") {
    // No analysis on this route: its section stays hidden.
    if (await page.$(`${card} .analysis.on`)) fail("analysis section shown for a route without analysis");
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
  } else if (scenario === "analysis-fixture") {
    await page.waitForSelector(`${card} .analysis.on tr[data-metric="slow"]`, { timeout: TIMEOUT });
    const head = await page.$eval(`${card} .analysis h3`, (e) => e.textContent);
    if (head !== "AnalysisFailedrun fixture-run") fail(`analysis heading reads ${JSON.stringify(head)}`);
    const rows = await metricRows(page);
    log("metrics:", JSON.stringify(rows));
    const want = {
      errors: ["errors", "sequential", "Failed", "2.1 % > 1.0\u00d7 stable 0.9 %", "3", "1", "2", "0"],
      success: ["success", "threshold", "Running", "99.5 % \u2265 min 99.0 %", "5", "1", "0", "0"],
      p99: ["p99", "threshold", "Failed", "312 ms > max 250 ms", "4", "2", "0", "0"],
      apdex: ["apdex", "prometheus", "Error", "\u2013", "0", "0", "0", "5"],
      slow: ["slow", "sequential", "Pending", "\u2013", "0", "0", "0", "0"],
    };
    for (const [name, cells] of Object.entries(want)) {
      if (!rows[name] || JSON.stringify(rows[name].cells) !== JSON.stringify(cells))
        fail(`metric ${name}: row ${JSON.stringify(rows[name])}, want ${JSON.stringify(cells)}`);
    }
    if (Object.keys(rows).length !== 5) fail(`expected 5 metric rows, got ${Object.keys(rows)}`);
    // The three failed measurements on each of the three charts (drawn with the live stats).
    const counts = await waitMarks(page, (c) => c.length === 3 && c.every((n) => n === 3), "three marks per chart");
    const legend = await page.$eval(`${card} .chart [data-field="failed-marks"]`, (e) => e.textContent);
    if (legend !== "\u2716 3 failed") fail(`chart legend reads ${legend}`);
    const tips = await page.$$eval(`${card} .chart:first-child line[data-mark="failed"] title`, (t) => t.map((x) => x.textContent));
    if (!tips.some((t) => t.startsWith("analysis: errors failed"))) fail(`mark titles ${JSON.stringify(tips)}`);
    log("marks per chart:", JSON.stringify(counts));
    if (screenshot) {
      await page.screenshot({ path: screenshot, fullPage: true });
      log("screenshot:", screenshot);
    }
    // The route loses its analysis ("analysis": null): the section and the marks go.
    fixture.setAnalysis(null);
    await page.waitForSelector(`${card} .analysis:not(.on)`, { state: "attached", timeout: TIMEOUT });
    await waitMarks(page, (c) => c.length === 3 && c.every((n) => n === 0), "no marks after analysis: null");
    log("analysis: null hides the section and the marks");
    // The fleet line: this replica, the leader, the store; then the store lost.
    await page.waitForSelector('#fleet[data-leader="r0"][data-store="connected"]:not([hidden]):not(.down)', { timeout: TIMEOUT });
    const line = await page.$eval("#fleet", (e) => e.textContent);
    if (line !== `replica r1 \u00b7 leader r0 \u00b7 etcd connected \u00b7 2 replicas \u00b7 config drift on r1`)
      fail(`fleet line reads ${JSON.stringify(line)}`);
    fixture.setStore("disconnected");
    await page.waitForSelector('#fleet.down[data-leader=""][data-store="disconnected"]', { timeout: TIMEOUT });
    log("fleet line:", line, "- then the store disconnected");
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
