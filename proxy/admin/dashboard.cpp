// Dashboard page; see dashboard.h. One self-contained page (inline CSS, JS and SVG; no CDN, no
// framework): the only network calls are to the admin API of the listener that served it —
// one /api/v1/watch event stream for every route's status, /api/v1/stats once a second for the
// per-variant charts, GET .../analysis every 2 s for routes with an analysis run (failed
// measurements are marked on the charts; a new measurement re-reads the status), GET
// /api/v1/cluster every 2 s for the fleet line (this replica, the leader, the state store's
// state; shown when the rollout state is shared through etcd), and the rollout operations. A 401 on an operation asks for the token
// (kept in sessionStorage) and retries. Lost streams reconnect with a backoff, so the page
// survives a proxy restart without a reload.
#include "admin/dashboard.h"

namespace canary::admin {

std::string_view dashboard_html() {
  static constexpr std::string_view page = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>canary-proxy · rollouts</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'">
<link rel="icon" href="data:,">
<style>
  :root { --stable: #3867d6; --canary: #e58e26; --ok: #20a35a; --bad: #d63031; --muted: #7a8290;
          --line: #e3e6ea; --bg: #f4f6f8; --card: #fff; --ink: #1f2430; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: var(--ink);
         background: var(--bg); }
  header { display: flex; align-items: center; gap: 16px; padding: 12px 24px; background: #1f2430;
           color: #fff; }
  header h1 { font-size: 17px; margin: 0; font-weight: 600; }
  header .sub { color: #aeb6c4; font-size: 13px; }
  header .spacer { flex: 1; }
  #conn { font-size: 13px; padding: 2px 10px; border-radius: 10px; background: #3a4152; }
  #conn.live::before { content: "\25CF  "; color: #3ddc84; }
  #conn.down::before { content: "\25CF  "; color: #ff6b6b; }
  #fleet { font-size: 13px; padding: 2px 10px; border-radius: 10px; background: #3a4152; }
  #fleet.down { background: #9b1c1c; }
  #forget { color: #aeb6c4; font-size: 12px; background: none; border: 0; cursor: pointer;
            text-decoration: underline; display: none; }
  main { padding: 20px 24px; display: grid; gap: 20px; }
  #empty { color: var(--muted); }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
          box-shadow: 0 1px 2px rgba(0,0,0,.04); }
  .card-head { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; }
  .card-head h2 { font-size: 18px; margin: 0; }
  .phase { font-weight: 600; font-size: 13px; padding: 2px 10px; border-radius: 10px; }
  .phase.Healthy { background: #d6f5e1; color: #146c3a; }
  .phase.Progressing { background: #dce8ff; color: #1f4fb3; }
  .phase.Paused { background: #fff0c2; color: #7a5a00; }
  .phase.Degraded { background: #ffd9d9; color: #9b1c1c; }
  .message { color: var(--muted); }
  .layout { display: grid; grid-template-columns: minmax(300px, 1fr) minmax(220px, 320px); gap: 8px 32px;
            margin-top: 12px; }
  @media (max-width: 820px) { .layout { grid-template-columns: 1fr; } }
  dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0 0 12px; }
  dl.kv dt { color: var(--muted); }
  dl.kv dd { margin: 0; font-variant-numeric: tabular-nums; }
  .tag { display: inline-block; padding: 0 8px; border-radius: 4px; font-weight: 600; color: #fff; }
  .tag.stable { background: var(--stable); } .tag.canary { background: var(--canary); }
  .none { color: var(--muted); }
  .bars { display: grid; grid-template-columns: max-content 1fr 4.5em; gap: 5px 10px; align-items: center;
          margin-bottom: 12px; }
  .bars .label { color: var(--muted); font-size: 13px; }
  .bar { height: 14px; background: var(--stable); border-radius: 3px; overflow: hidden; }
  .bar > div { height: 100%; background: var(--canary); width: 0; transition: width .4s; }
  .bars .pct { text-align: right; font-variant-numeric: tabular-nums; }
  .actions { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
  .actions button, .actions input { font: inherit; }
  button { padding: 5px 12px; border: 1px solid #c6ccd5; border-radius: 5px; background: #fff; cursor: pointer; }
  button:hover:enabled { background: #eef2f7; }
  button:disabled { color: #aab0ba; cursor: default; background: #f7f8fa; }
  button.primary:enabled { background: var(--ok); border-color: var(--ok); color: #fff; }
  button.danger:enabled { color: var(--bad); border-color: #e7b3b3; }
  .actions input[type=number] { width: 5.5em; padding: 4px 6px; border: 1px solid #c6ccd5; border-radius: 5px; }
  .error { color: var(--bad); white-space: pre-wrap; min-height: 1.2em; margin-top: 6px; font-size: 13px; }
  h3 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 6px; }
  ol.steps { list-style: none; padding: 0; margin: 0; counter-reset: step; }
  ol.steps li { counter-increment: step; padding: 3px 8px 3px 38px; border-radius: 4px; position: relative;
                font-variant-numeric: tabular-nums; }
  ol.steps li::before { content: counter(step); position: absolute; left: 4px; width: 26px; text-align: right;
                        color: var(--muted); font-size: 12px; top: 4px; }
  ol.steps li.done { color: var(--muted); }
  ol.steps li.done::after { content: " \2713"; color: var(--ok); }
  ol.steps li.current { background: #fff5dc; font-weight: 600; outline: 1px solid #f1d58a; }
  ol.steps li.current::before { content: "\25B6  " counter(step); color: var(--canary); }
  ol.steps li.current.aborted { background: #ffe3e3; outline-color: #f0b4b4; }
  table.variants { border-collapse: collapse; margin: 14px 0 6px; width: 100%; max-width: 760px;
                   font-variant-numeric: tabular-nums; }
  table.variants th, table.variants td { text-align: right; padding: 4px 10px; border-bottom: 1px solid var(--line); }
  table.variants th:first-child, table.variants td:first-child,
  table.variants th:nth-child(2), table.variants td:nth-child(2) { text-align: left; }
  table.variants th { color: var(--muted); font-weight: 500; font-size: 12px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(230px, 1fr)); gap: 14px; margin-top: 8px; }
  .chart { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px 4px; }
  .chart .title { display: flex; justify-content: space-between; font-size: 12px; color: var(--muted); }
  .chart svg { width: 100%; height: 64px; display: block; }
  .chart .legend { font-size: 11px; color: var(--muted); display: flex; gap: 10px; }
  .chart .legend span::before { content: ""; display: inline-block; width: 10px; height: 3px; margin-right: 4px;
                                vertical-align: middle; background: currentColor; }
  .legend .s { color: var(--stable); } .legend .c { color: var(--canary); }
  .chart .legend i { font-style: normal; } .chart .legend i.max { margin-left: auto; }
  .analysis { display: none; margin-top: 12px; }
  .analysis.on { display: block; }
  .analysis h3 { display: flex; gap: 10px; align-items: baseline; }
  .analysis h3 .run { text-transform: none; letter-spacing: 0; font-weight: 400; }
  .aphase { font-weight: 600; font-size: 12px; padding: 1px 8px; border-radius: 9px; background: #eceff3;
            color: var(--muted); text-transform: none; letter-spacing: 0; }
  .aphase.Successful { background: #d6f5e1; color: #146c3a; }
  .aphase.Running { background: #dce8ff; color: #1f4fb3; }
  .aphase.Inconclusive { background: #fff0c2; color: #7a5a00; }
  .aphase.Failed, .aphase.Error { background: #ffd9d9; color: #9b1c1c; }
  table.metrics { border-collapse: collapse; width: 100%; max-width: 980px; font-variant-numeric: tabular-nums; }
  table.metrics th, table.metrics td { text-align: left; padding: 4px 10px; border-bottom: 1px solid var(--line); }
  table.metrics th { color: var(--muted); font-weight: 500; font-size: 12px; }
  table.metrics .n { text-align: right; }
  table.metrics tr[data-phase="Failed"] td:first-child { box-shadow: inset 3px 0 var(--bad); }
  .legend .f { color: var(--bad); }
  details.events { margin-top: 10px; font-size: 13px; }
  details.events summary { cursor: pointer; color: var(--muted); }
  details.events table { border-collapse: collapse; margin-top: 6px; }
  details.events td { padding: 2px 10px 2px 0; vertical-align: top; }
</style>
</head>
<body>
<header>
  <h1>canary-proxy</h1><span class="sub">rollouts</span>
  <span class="spacer"></span>
  <span id="fleet" hidden></span>
  <button id="forget" type="button" title="Forget the admin token of this tab">forget token</button>
  <span id="conn" class="down">connecting&hellip;</span>
</header>
<main id="routes"><p id="empty">Waiting for the rollout status&hellip;</p></main>
<script>
"use strict";
const HISTORY_MS = 5 * 60 * 1000;   // charts show the last 5 minutes
const TOKEN_KEY = "canary-proxy-token";
const routes = new Map();            // name -> {status, received, card, history: []}
const main = document.getElementById("routes");
const conn = document.getElementById("conn");
const forget = document.getElementById("forget");
const fleet = document.getElementById("fleet");

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}
const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function showForget() { forget.style.display = token() ? "inline" : "none"; }
forget.addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showForget(); });
showForget();

function setConn(live, text) {
  conn.className = live ? "live" : "down";
  conn.textContent = text;
}

// --- formatting
function pct(x) { return (100 * x).toFixed(x > 0 && x < 0.1 ? 2 : 1) + " %"; }
function rate(x) { return x >= 100 ? x.toFixed(0) : x.toFixed(1); }
function ms(x) { return x === null || x === undefined ? "\u2013" : (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)) + " ms"; }
function stepText(s) {
  if (s && "setWeight" in s) return "setWeight: " + s.setWeight;
  if (s && s.setMirror) return "setMirror: " + s.setMirror.percent + " % of " + s.setMirror.methods.join(", ");
  if (s && s.pause) return s.pause.duration ? "pause: " + s.pause.duration : "pause: {} (until promoted)";
  if (s && s.analysis && s.analysis.duration !== undefined) {
    const d = typeof s.analysis.duration === "number" ? s.analysis.duration + "s" : s.analysis.duration;
    return "analysis: " + d + (s.analysis.metrics && s.analysis.metrics.length ? " (" + s.analysis.metrics.join(", ") + ")" : "");
  }
  return JSON.stringify(s);
}
// Analysis values in each metric's unit (as canaryctl shows them): sequential metrics compare
// bad-request rates; a threshold metric is a latency in ms when a bound or its value exceeds 1
// (a rate cannot), a rate otherwise; provider and webhook results are plain numbers.
function isNum(x) { return typeof x === "number" && isFinite(x); }
function unitOf(m) {
  if (m.kind === "sequential") return "fraction";
  if (m.kind !== "threshold") return "number";
  return [m.min, m.max, m.last ? m.last.value : null].some(x => isNum(x) && x > 1) ? "ms" : "fraction";
}
function fmtValue(x, unit) {
  if (!isNum(x)) return "\u2013";
  if (unit === "fraction") {
    const p = 100 * x;
    return (p !== 0 && Math.abs(p) < 0.1 ? String(Number(p.toPrecision(2))) : p.toFixed(1)) + " %";
  }
  if (unit === "ms") return ms(x);
  return String(Number(x.toPrecision(6)));
}
// Whether a measurement's value means something: the proxy writes 0 when a provider could not be
// asked (Error) or the canary had no request to measure.
function hasValue(m, x) {
  if (x.phase === "Error" || x.phase === "Pending") return false;
  return !((m.kind === "sequential" || m.kind === "threshold") && x.canary_requests === 0);
}
// The last value against the bound: "2.1 % > 1.0\u00d7 stable 0.9 %", "97.2 % < min 99.0 %".
function boundText(m) {
  const v = m.last ? m.last.value : null;
  if (!isNum(v) || !hasValue(m, m.last)) return "\u2013";
  const u = unitOf(m), f = x => fmtValue(x, u);
  if (m.kind === "sequential") {
    const s = m.last.stable_value, b = isNum(m.max) ? m.max : 1;
    if (!isNum(s)) return f(v) + " vs stable \u2013";
    const r = b.toFixed(2).replace(/0$/, "");
    return f(v) + (v > b * s ? " > " : " \u2264 ") + r + "\u00d7 stable " + f(s);
  }
  if (isNum(m.max) && v > m.max) return f(v) + " > max " + f(m.max);
  if (isNum(m.min) && v < m.min) return f(v) + " < min " + f(m.min);
  if (isNum(m.min) && isNum(m.max)) return f(m.min) + " \u2264 " + f(v) + " \u2264 " + f(m.max);
  if (isNum(m.max)) return f(v) + " \u2264 max " + f(m.max);
  if (isNum(m.min)) return f(v) + " \u2265 min " + f(m.min);
  return f(v);
}
function weightPct(s, w) { return s.weight_total ? 100 * w / s.weight_total : 0; }
function fmtWeight(s, w) {
  const p = weightPct(s, w);
  return (Number.isInteger(p) ? p : p.toFixed(1)) + " %" + (s.weight_total !== 100 ? " (" + w + "/" + s.weight_total + ")" : "");
}

// --- API calls
async function call(method, path, body) {
  for (let attempt = 0; attempt < 4; attempt++) {
    const headers = {};
    if (token()) headers["Authorization"] = "Bearer " + token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let r;
    try {
      r = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store"});
    } catch (e) {
      return {ok: false, error: "the proxy is not reachable"};
    }
    if (r.status === 401) {
      const t = window.prompt(token() ? "The admin API refused the token. Admin API token:"
                                      : "This proxy's admin API needs a token (admin.token_file). Token:", "");
      if (t === null || t.trim() === "") return {ok: false, error: "401: a token is required for this operation"};
      sessionStorage.setItem(TOKEN_KEY, t.trim());
      showForget();
      continue;
    }
    const j = await r.json().catch(() => null);
    if (!r.ok) {
      const msg = r.status + ": " + (j && j.error ? j.error : r.statusText);
      return {ok: false, error: msg + (j && j.errors && j.errors.length ? "\n" + j.errors.join("\n") : "")};
    }
    return {ok: true, body: j};
  }
  return {ok: false, error: "401: the token was refused"};
}

// --- one card per route
function buildCard(name) {
  const base = "/api/v1/rollouts/" + encodeURIComponent(name);
  const c = {};
  c.phase = el("span", {class: "phase"});
  c.message = el("span", {class: "message"});
  c.stable = el("dd"); c.canary = el("dd"); c.step = el("dd"); c.weight = el("dd"); c.actual = el("dd"); c.mirror = el("dd");
  c.pause = el("dd"); c.updated = el("dd");
  c.barSet = el("div"); c.barApplied = el("div"); c.barObserved = el("div");
  c.pctSet = el("span", {class: "pct"}); c.pctApplied = el("span", {class: "pct"}); c.pctObserved = el("span", {class: "pct", "data-field": "observed-pct"});
  c.steps = el("ol", {class: "steps"});
  c.error = el("div", {class: "error", role: "status"});
  c.weightInput = el("input", {type: "number", min: 0, step: 1, "aria-label": "canary weight"});
  c.rows = {};
  const act = async (label, method, suffix, body, confirmText) => {
    c.error.textContent = "";
    if (confirmText && !window.confirm(confirmText)) return;
    for (const b of Object.values(c.buttons)) b.disabled = true;
    const res = await call(method, base + suffix, body);
    if (res.ok && res.body && res.body.name) update(res.body);
    else if (!res.ok) c.error.textContent = label + " failed: " + res.error;
    const r = routes.get(name);
    if (r) render(r);
  };
  c.buttons = {
    promote: el("button", {class: "primary", "data-action": "promote", title: "End the current pause or skip the current step",
                           onclick: () => act("Promote", "POST", "/promote")}, "Promote"),
    promoteFull: el("button", {"data-action": "promote-full", title: "Complete the rollout now: stable := canary",
                               onclick: () => act("Promote full", "POST", "/promote", {full: true},
                                                  "Promote " + name + " fully: the canary becomes stable now?")}, "Promote full"),
    abort: el("button", {class: "danger", "data-action": "abort", title: "Send all traffic back to stable",
                         onclick: () => act("Abort", "POST", "/abort", undefined,
                                           "Abort the rollout of " + name + "? All traffic goes back to stable.")}, "Abort"),
    retry: el("button", {"data-action": "retry", title: "Restart an aborted rollout from step 0",
                         onclick: () => act("Retry", "POST", "/retry")}, "Retry"),
    pause: el("button", {"data-action": "pause", title: "Hold the rollout (a timed pause keeps its remaining time)",
                         onclick: () => act("Pause", "POST", "/pause")}, "Pause"),
    resume: el("button", {"data-action": "resume", title: "End the manual hold",
                          onclick: () => act("Resume", "POST", "/resume")}, "Resume"),
    setWeight: el("button", {"data-action": "set-weight", title: "Override the canary weight until the next setWeight step",
                             onclick: () => {
                               const w = Number(c.weightInput.value), s = routes.get(name).status;
                               if (c.weightInput.value === "" || !Number.isInteger(w) || w < 0 || w > s.weight_total) {
                                 c.error.textContent = "Set weight: enter an integer from 0 to " + s.weight_total;
                                 return;
                               }
                               act("Set weight", "PUT", "/weight", {weight: w});
                             }}, "Set weight"),
  };
  const variantRow = (v) => {
    const cells = {upstream: el("td"), rps: el("td"), err: el("td"), p50: el("td"), p99: el("td"), share: el("td")};
    c.rows[v] = cells;
    return el("tr", {"data-variant": v}, el("td", {}, el("span", {class: "tag " + v}, v)),
              cells.upstream, cells.rps, cells.err, cells.p50, cells.p99, cells.share);
  };
  const chartBox = (title) => {
    const box = {value: el("span"), svg: svg("svg", {viewBox: "0 0 300 64", preserveAspectRatio: "none", role: "img", "aria-label": title})};
    box.el = el("div", {class: "chart"},
      el("div", {class: "title"}, el("span", {}, title), box.value), box.svg,
      el("div", {class: "legend"}, el("span", {class: "s"}, "stable"), el("span", {class: "c"}, "canary"),
         box.fails = el("i", {class: "f", "data-field": "failed-marks"}),
         box.span = el("i", {}), box.max = el("i", {class: "max"})));
    return box;
  };
  c.charts = {rps: chartBox("requests / s"), err: chartBox("error rate"), p99: chartBox("p99 latency")};
  c.analysisPhase = el("span", {class: "aphase"});
  c.analysisRun = el("span", {class: "run"});
  c.metrics = el("tbody");
  c.analysisBox = el("div", {class: "analysis", "data-field": "analysis"},
    el("h3", {}, el("span", {}, "Analysis"), c.analysisPhase, c.analysisRun),
    el("table", {class: "metrics"},
      el("thead", {}, el("tr", {}, ...["metric", "kind", "phase", "last value vs bound", "successful", "failed", "inconclusive", "errors"]
        .map((h, i) => el("th", {class: i >= 4 ? "n" : ""}, h)))),
      c.metrics));
  c.events = el("tbody");
  c.eventsBox = el("details", {class: "events"}, el("summary", {}, "Recent events"), el("table", {}, c.events));
  c.eventsBox.addEventListener("toggle", () => { if (c.eventsBox.open) loadEvents(name); });
  c.root = el("section", {class: "card", "data-route": name},
    el("div", {class: "card-head"}, el("h2", {}, name), c.phase, c.message),
    el("div", {class: "layout"},
      el("div", {},
        el("dl", {class: "kv"},
          el("dt", {}, "Stable"), c.stable, el("dt", {}, "Canary"), c.canary,
          el("dt", {}, "Step"), c.step, el("dt", {}, "Set weight"), c.weight,
          el("dt", {}, "Actual weight"), c.actual, el("dt", {}, "Mirror"), c.mirror,
          el("dt", {}, "Pause"), c.pause,
          el("dt", {}, "Updated"), c.updated),
        el("div", {class: "bars"},
          el("span", {class: "label"}, "set weight"), el("div", {class: "bar"}, c.barSet), c.pctSet,
          el("span", {class: "label"}, "applied now"), el("div", {class: "bar"}, c.barApplied), c.pctApplied,
          el("span", {class: "label"}, "traffic (last 10 s)"), el("div", {class: "bar", "data-field": "observed"}, c.barObserved), c.pctObserved),
        el("div", {class: "actions"}, c.buttons.promote, c.buttons.promoteFull, c.buttons.abort, c.buttons.retry,
           c.buttons.pause, c.buttons.resume, c.weightInput, c.buttons.setWeight),
        c.error),
      el("div", {}, el("h3", {}, "Steps"), c.steps)),
    el("table", {class: "variants"},
      el("thead", {}, el("tr", {}, ...["variant", "upstream", "req/s", "error rate", "p50", "p99", "share"].map(h => el("th", {}, h)))),
      el("tbody", {}, variantRow("stable"), variantRow("canary"))),
    c.analysisBox,
    el("div", {class: "charts"}, c.charts.rps.el, c.charts.err.el, c.charts.p99.el),
    c.eventsBox);
  return c;
}

function render(r) {
  const s = r.status, c = r.card;
  c.root.dataset.phase = s.phase;
  c.root.dataset.step = s.step;
  c.phase.className = "phase " + s.phase;
  c.phase.textContent = s.phase;
  c.message.textContent = s.message || "";
  c.stable.replaceChildren(el("span", {class: "tag stable"}, s.stable));
  c.canary.replaceChildren(s.canary ? el("span", {class: "tag canary"}, s.canary) : el("span", {class: "none"}, "none"));
  c.step.textContent = s.canary ? Math.min(s.step, s.steps.length) + " / " + s.steps.length : (s.steps.length ? "\u2013 / " + s.steps.length : "no steps");
  c.weight.textContent = fmtWeight(s, s.weight);
  c.actual.textContent = fmtWeight(s, s.actual_weight);
  c.mirror.textContent = s.mirror ? s.mirror.percent + " % of " + s.mirror.methods.join(", ") + " (copies)" : "off";
  renderPause(r);
  c.updated.textContent = s.updated_at;
  const setP = weightPct(s, s.weight), appP = weightPct(s, s.actual_weight);
  c.barSet.style.width = setP + "%"; c.pctSet.textContent = setP.toFixed(1) + " %";
  c.barApplied.style.width = appP + "%"; c.pctApplied.textContent = appP.toFixed(1) + " %";
  // Steps: done ones ticked, the current one marked (only while a rollout is under way).
  const items = s.steps.map((st, i) => {
    let cls = "";
    if (s.canary) cls = i < s.step ? "done" : i === s.step ? "current" + (s.phase === "Degraded" ? " aborted" : "") : "";
    else if (s.step >= s.steps.length && s.steps.length) cls = "done";
    return el("li", {class: cls, "data-index": i}, stepText(st));
  });
  c.steps.replaceChildren(...(items.length ? items : [el("li", {class: "none"}, "no steps: a new version is promoted at once")]));
  // Buttons: enabled in the phases where the API accepts the operation (see docs/rollouts.md).
  const active = s.phase === "Progressing" || s.phase === "Paused";
  c.buttons.promote.disabled = !active;
  c.buttons.promoteFull.disabled = !(active || s.phase === "Degraded");
  c.buttons.abort.disabled = !active;
  c.buttons.retry.disabled = s.phase !== "Degraded";
  c.buttons.pause.disabled = !(s.phase === "Progressing" || (s.phase === "Paused" && s.paused_by === "step"));
  // Resuming a pause for analysis resets the metrics' inconclusive streaks.
  c.buttons.resume.disabled = !(s.phase === "Paused" && (s.paused_by === "user" || s.paused_by === "analysis"));
  c.buttons.setWeight.disabled = !active;
  c.weightInput.disabled = !active;
  c.weightInput.max = s.weight_total;
  if (document.activeElement !== c.weightInput) c.weightInput.value = s.weight;
  for (const v of ["stable", "canary"]) {
    const up = v === "stable" ? s.stable : s.canary;
    c.rows[v].upstream.textContent = up || "\u2013";
  }
  renderAnalysis(r);
  if (c.eventsBox.open) loadEvents(s.name);
}

// The status's analysis block: hidden when it is missing or null (no analysis on the route).
function renderAnalysis(r) {
  const a = r.status.analysis, c = r.card;
  const on = a !== null && typeof a === "object";
  c.analysisBox.classList.toggle("on", on);
  if (!on) {
    c.metrics.replaceChildren();
    r.marks.clear();
    r.analysisKey = undefined;
    return;
  }
  c.analysisBox.dataset.phase = a.phase || "";
  c.analysisPhase.className = "aphase " + (a.phase || "");
  c.analysisPhase.textContent = a.phase || "no run";
  c.analysisRun.textContent = a.run ? "run " + a.run : "";
  const metrics = Array.isArray(a.metrics) ? a.metrics : [];
  const rows = metrics.map(m => el("tr", {"data-metric": m.name, "data-phase": m.phase || ""},
    el("td", {}, m.name), el("td", {}, m.kind || "\u2013"),
    el("td", {}, el("span", {class: "aphase " + (m.phase || "")}, m.phase || "\u2013")),
    el("td", {"data-field": "last", title: m.last && m.last.message ? m.last.message : ""}, boundText(m)),
    ...["successful", "failed", "inconclusive", "errors"].map(k => el("td", {class: "n"}, isNum(m[k]) ? m[k] : "\u2013"))));
  c.metrics.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", {colspan: 8, class: "none"}, "no metrics"))]));
  for (const m of metrics) if (m.last && m.last.phase === "Failed") addMark(r, a.run, m.name, m.last);
}

// A failed measurement to mark on the charts, at its time on the proxy's clock.
function addMark(r, run, metric, m) {
  if (r.marksRun !== run) { r.marks.clear(); r.marksRun = run; }
  const t = Date.parse(m.time);
  if (!isNaN(t)) r.marks.set(metric + "@" + m.time, {t, metric, message: m.message || ""});
}

function renderPause(r) {
  const s = r.status, c = r.card;
  if (s.pause_remaining_s === null || s.pause_remaining_s === undefined) {
    const why = {user: "held by user", analysis: "held by analysis", webhook: "waiting for a webhook"}[s.paused_by];
    c.pause.textContent = s.phase === "Paused" ? why || "until promoted" : "\u2013";
    return;
  }
  const held = s.paused_by === "user";
  const left = held ? s.pause_remaining_s : Math.max(0, s.pause_remaining_s - (Date.now() - r.received) / 1000);
  c.pause.textContent = Math.ceil(left) + " s left" + (held ? " (held by user)" : "");
}

function update(s) {
  let r = routes.get(s.name);
  if (!r) {
    r = {status: s, received: Date.now(), card: buildCard(s.name), history: [], marks: new Map()};
    routes.set(s.name, r);
    placeCards();
  }
  r.status = s;
  r.received = Date.now();
  render(r);
}

function placeCards() {
  const names = [...routes.keys()];
  if (!names.length) { main.replaceChildren(el("p", {id: "empty"}, "No routes.")); return; }
  main.replaceChildren(...names.map(n => routes.get(n).card.root));
}

async function loadEvents(name) {
  const r = routes.get(name);
  if (!r) return;
  try {
    const res = await fetch("/api/v1/rollouts/" + encodeURIComponent(name) + "/events", {cache: "no-store"});
    if (!res.ok) return;
    const j = await res.json();
    const rows = (j.events || []).slice(-10).reverse().map(e => el("tr", {},
      el("td", {}, e.time), el("td", {}, e.from + " \u2192 " + e.to), el("td", {}, "step " + e.step + ", weight " + e.weight),
      el("td", {}, e.cause), el("td", {}, e.message || "")));
    r.card.events.replaceChildren(...rows);
  } catch (e) { /* shown again on the next change */ }
}

// --- live status: one event stream for all routes, reconnecting with a backoff
let backoff = 500;
function connect() {
  const es = new EventSource("/api/v1/watch");
  es.addEventListener("open", () => { backoff = 500; setConn(true, "live"); refreshList(); });
  es.addEventListener("status", ev => {
    try { update(JSON.parse(ev.data)); } catch (e) { /* ignore a malformed event */ }
  });
  es.addEventListener("error", () => {
    es.close();
    setConn(false, "reconnecting\u2026");
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 5000);
  });
}

// The full list: drops routes removed by a reload (the stream only reports changes).
async function refreshList() {
  try {
    const res = await fetch("/api/v1/rollouts", {cache: "no-store"});
    if (!res.ok) return;
    const j = await res.json();
    const names = new Set(j.rollouts.map(s => s.name));
    let removed = false;
    for (const n of [...routes.keys()]) if (!names.has(n)) { routes.delete(n); removed = true; }
    for (const s of j.rollouts) update(s);
    if (removed) placeCards();
  } catch (e) { /* the stream's reconnect will retry */ }
}

// --- per-variant statistics, once a second
let statsBusy = false;
async function pollStats() {
  if (statsBusy) return;
  statsBusy = true;
  try {
    const res = await fetch("/api/v1/stats", {cache: "no-store"});
    if (res.ok) applyStats(await res.json());
  } catch (e) {
    /* the proxy is restarting: the stream shows it */
  } finally {
    statsBusy = false;
  }
}

function applyStats(j) {
  const now = Date.now();
  for (const rs of j.routes || []) {
    const r = routes.get(rs.route);
    if (!r) continue;
    const v = rs.variants;
    r.history.push({t: now, stable: v.stable, canary: v.canary});
    while (r.history.length && r.history[0].t < now - HISTORY_MS) r.history.shift();
    const c = r.card;
    for (const name of ["stable", "canary"]) {
      const x = v[name], row = c.rows[name];
      row.rps.textContent = rate(x.rps);
      row.err.textContent = x.rps > 0 ? pct(x.error_rate) : "\u2013";
      row.p50.textContent = ms(x.p50_ms);
      row.p99.textContent = ms(x.p99_ms);
      row.share.textContent = x.rps > 0 ? pct(x.share) : "\u2013";
    }
    const total = v.stable.rps + v.canary.rps;
    const observed = total > 0 ? 100 * v.canary.share : 0;
    c.barObserved.style.width = observed + "%";
    c.pctObserved.textContent = total > 0 ? observed.toFixed(1) + " %" : "no traffic";
    for (const [k, m] of r.marks) if (m.t < now - HISTORY_MS) r.marks.delete(k);
    const marks = [...r.marks.values()];
    drawChart(c.charts.rps, r.history, h => h.rps, x => rate(x) + "/s", 0, marks);
    drawChart(c.charts.err, r.history, h => h.rps > 0 ? h.error_rate : null, x => pct(x), 0.05, marks);
    drawChart(c.charts.p99, r.history, h => h.p99_ms, x => ms(x), 0, marks);
  }
  for (const r of routes.values()) renderPause(r);
}

// Two polylines (stable, canary); x spans the history kept (1 to 5 minutes), y runs from 0 to
// the visible maximum. Failed analysis measurements are red vertical lines at their time.
function drawChart(box, history, pick, fmt, minTop, marks) {
  const W = 300, H = 64, pad = 3, now = Date.now();
  const span = Math.min(HISTORY_MS, Math.max(60000, history.length ? now - history[0].t : 0));
  let top = minTop || 0;
  for (const h of history) for (const v of ["stable", "canary"]) {
    const y = pick(h[v]);
    if (y !== null && y !== undefined && y > top) top = y;
  }
  if (top <= 0) top = 1;
  const kids = [svg("line", {x1: 0, y1: H - pad, x2: W, y2: H - pad, stroke: "#e3e6ea", "stroke-width": 1, "vector-effect": "non-scaling-stroke"})];
  for (const [v, color] of [["stable", "var(--stable)"], ["canary", "var(--canary)"]]) {
    let pts = [];
    const flush = () => {
      if (pts.length === 1) pts.push([pts[0][0] + 0.5, pts[0][1]]);
      if (pts.length) kids.push(svg("polyline", {points: pts.map(p => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "),
        fill: "none", stroke: color, "stroke-width": 1.6, "stroke-linejoin": "round", "vector-effect": "non-scaling-stroke"}));
      pts = [];
    };
    for (const h of history) {
      const y = pick(h[v]);
      if (y === null || y === undefined) { flush(); continue; }
      const x = W * (1 - (now - h.t) / span);
      pts.push([x, H - pad - (H - 2 * pad) * y / top]);
    }
    flush();
  }
  let shown = 0;
  for (const m of marks || []) {
    const x = W * (1 - (now - m.t) / span);
    if (x < 0 || x > W) continue;
    const line = svg("line", {x1: x, y1: 0, x2: x, y2: H, stroke: "var(--bad)", "stroke-width": 1.5,
                              "stroke-dasharray": "3 2", "vector-effect": "non-scaling-stroke", "data-mark": "failed"});
    const title = svg("title", {});
    title.textContent = "analysis: " + m.metric + " failed" + (m.message ? ": " + m.message : "");
    line.append(title);
    kids.push(line);
    shown++;
  }
  box.svg.replaceChildren(...kids);
  box.fails.textContent = shown ? "\u2716 " + shown + " failed" : "";
  const last = history.length ? history[history.length - 1] : null;
  const parts = [];
  if (last) for (const v of ["stable", "canary"]) {
    const y = pick(last[v]);
    if (y !== null && y !== undefined) parts.push(v + " " + fmt(y));
  }
  box.value.textContent = parts.join(" \u00b7 ");
  box.span.textContent = "last " + (span >= 90000 ? Math.round(span / 60000) + " min" : Math.round(span / 1000) + " s");
  box.max.textContent = "max " + fmt(top);
}

// --- analysis measurements of routes with a run: marks for failed ones; a new measurement also
// re-reads the status (the metrics table), whether or not the stream reported a change.
let analysisBusy = false;
async function pollAnalysis() {
  if (analysisBusy) return;
  analysisBusy = true;
  try {
    for (const [name, r] of [...routes]) {
      const a = r.status.analysis;
      if (!a || !a.run) continue;
      const base = "/api/v1/rollouts/" + encodeURIComponent(name);
      const res = await fetch(base + "/analysis", {cache: "no-store"});
      if (!res.ok) continue;
      const j = await res.json();
      const list = Array.isArray(j.measurements) ? j.measurements : [];
      for (const m of list) if (m.phase === "Failed") addMark(r, j.run, m.metric, m);
      const key = j.run + ":" + list.length + ":" + (list.length ? list[list.length - 1].time : "");
      if (r.analysisKey !== undefined && key !== r.analysisKey) {
        const st = await fetch(base, {cache: "no-store"});
        if (st.ok) update(await st.json());
      }
      r.analysisKey = key;
    }
  } catch (e) {
    /* the proxy is restarting: the stream shows it */
  } finally {
    analysisBusy = false;
  }
}

// --- the fleet: which replica served the page, which one leads (runs the timers and the
// analysis), and whether the state store answers (when it does not, every replica keeps
// routing as it was and refuses changes). A proxy on its own state file has nothing to show.
let clusterMissing = false;
async function pollCluster() {
  if (clusterMissing) return;
  try {
    const res = await fetch("/api/v1/cluster", {cache: "no-store"});
    if (res.status === 404) { clusterMissing = true; return; }  // a server without the endpoint
    if (res.ok) showCluster(await res.json());
  } catch (e) {
    /* the proxy is restarting: the stream shows it */
  }
}
function showCluster(j) {
  const store = j && j.store && typeof j.store === "object" ? j.store : {};
  const type = typeof store.type === "string" ? store.type : "";
  const state = typeof store.state === "string" ? store.state : "";
  const replicas = Array.isArray(j.replicas) ? j.replicas : [];
  const drift = replicas.filter(r => Array.isArray(r.config_drift) && r.config_drift.length).map(r => r.id);
  fleet.dataset.leader = j.leader || "";
  fleet.dataset.store = state;
  fleet.hidden = type === "" || type === "file";
  fleet.classList.toggle("down", state !== "connected");
  fleet.textContent = "replica " + (j.replica || "\u2013") + " \u00b7 leader " + (j.leader || "none") +
    " \u00b7 " + type + " " + (state || "\u2013") + " \u00b7 " + replicas.length + " replica" + (replicas.length === 1 ? "" : "s") +
    (drift.length ? " \u00b7 config drift on " + drift.join(", ") : "");
  fleet.title = "state store " + type + (store.revision !== undefined && store.revision !== null ? ", revision " + store.revision : "") +
    "\n" + replicas.map(r => r.id + (r.id === j.leader ? " (leader)" : "") + ", last seen " + (r.last_seen || "\u2013")).join("\n");
}

connect();
pollStats();
pollCluster();
setInterval(pollCluster, 2000);
setInterval(pollStats, 1000);
setInterval(pollAnalysis, 2000);
setInterval(refreshList, 10000);
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace canary::admin
