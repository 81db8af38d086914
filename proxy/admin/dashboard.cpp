// Dashboard page; see dashboard.h. Plain DOM code: no framework, no network fetches besides the
// admin API itself.
#include "admin/dashboard.h"

namespace canary::admin {

std::string_view dashboard_html() {
  static constexpr std::string_view page = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>canary-proxy</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; background: #fafafa; }
  h1 { font-size: 20px; }
  .route { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 1em 1.5em;
           margin-bottom: 1.5em; max-width: 60em; }
  .phase { font-weight: bold; padding: 2px 8px; border-radius: 4px; }
  .Healthy { background: #d4f7dc; } .Progressing { background: #dbe9ff; }
  .Paused { background: #fff2c6; } .Degraded { background: #ffd6d6; }
  table.kv td { padding: 2px 12px 2px 0; }
  ol.steps { padding-left: 1.5em; } ol.steps li.done { color: #888; }
  ol.steps li.current { font-weight: bold; }
  ol.steps li.current::after { content: "  \25C0 current"; color: #c60; }
  .bar { height: 18px; background: #4a90e2; border-radius: 3px; display: flex; overflow: hidden;
         max-width: 30em; }
  .bar div { background: #2ecc71; height: 100%; }
  button { margin: 4px 6px 4px 0; }
  #err { color: #b00; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>canary-proxy rollouts</h1>
<p>Token (only if the admin API requires one): <input id="token" type="password" size="30"></p>
<div id="err"></div>
<div id="routes">loading&hellip;</div>
<script>
"use strict";
const routes = {};
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("canary-token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("canary-token", tokenInput.value));

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
function stepText(s) {
  if ("setWeight" in s) return "setWeight: " + s.setWeight;
  return s.pause.duration ? "pause: " + s.pause.duration : "pause: {} (until promoted)";
}
async function call(method, path, body) {
  const headers = {};
  if (tokenInput.value) headers["Authorization"] = "Bearer " + tokenInput.value;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const err = document.getElementById("err");
  if (!r.ok) {
    const j = await r.json().catch(() => ({error: r.statusText}));
    err.textContent = r.status + ": " + j.error + (j.errors && j.errors.length ? "\n" + j.errors.join("\n") : "");
  } else {
    err.textContent = "";
  }
}
function render() {
  const box = document.getElementById("routes");
  box.replaceChildren();
  for (const s of Object.values(routes)) {
    const base = "/api/v1/rollouts/" + encodeURIComponent(s.name);
    const pct = 100 * s.actual_weight / s.weight_total;
    const canActive = s.phase === "Progressing" || s.phase === "Paused";
    const steps = el("ol", {class: "steps", start: 0});
    s.steps.forEach((st, i) => steps.append(el("li", {class: i < s.step ? "done" : i === s.step && s.canary ? "current" : ""}, stepText(st))));
    const weightInput = el("input", {type: "number", min: 0, max: s.weight_total, value: s.weight, size: 5});
    const button = (label, enabled, fn) => { const b = el("button", {onclick: fn}, label); b.disabled = !enabled; return b; };
    box.append(el("div", {class: "route"},
      el("h2", {}, s.name, " ", el("span", {class: "phase " + s.phase}, s.phase)),
      el("table", {class: "kv"},
        el("tr", {}, el("td", {}, "Message"), el("td", {}, s.message || "-")),
        el("tr", {}, el("td", {}, "Stable"), el("td", {}, s.stable)),
        el("tr", {}, el("td", {}, "Canary"), el("td", {}, s.canary || "-")),
        el("tr", {}, el("td", {}, "Step"), el("td", {}, s.step + "/" + s.steps.length)),
        el("tr", {}, el("td", {}, "Set weight"), el("td", {}, s.weight + " / " + s.weight_total)),
        el("tr", {}, el("td", {}, "Actual weight"), el("td", {}, s.actual_weight + " / " + s.weight_total)),
        el("tr", {}, el("td", {}, "Pause left"), el("td", {}, s.pause_remaining_s === null ? "-" : Math.ceil(s.pause_remaining_s) + " s" + (s.paused_by === "user" ? " (held)" : ""))),
        el("tr", {}, el("td", {}, "Updated"), el("td", {}, s.updated_at))),
      el("p", {}, "Traffic to canary (actual): ", pct.toFixed(1), " %"),
      (() => { const b = el("div", {class: "bar"}); const g = el("div", {}); g.style.width = pct + "%"; b.append(g); return b; })(),
      el("h3", {}, "Steps"), steps,
      el("div", {},
        button("Promote", canActive, () => call("POST", base + "/promote")),
        button("Promote full", canActive || s.phase === "Degraded", () => call("POST", base + "/promote", {full: true})),
        button("Abort", canActive, () => call("POST", base + "/abort")),
        button("Retry", s.phase === "Degraded", () => call("POST", base + "/retry")),
        button("Pause", s.phase === "Progressing" || (s.phase === "Paused" && s.paused_by === "step"), () => call("POST", base + "/pause")),
        button("Resume", s.phase === "Paused" && s.paused_by === "user", () => call("POST", base + "/resume")),
        " ", weightInput,
        button("Set weight", canActive, () => call("PUT", base + "/weight", {weight: Number(weightInput.value)})))));
  }
}
function connect() {
  const es = new EventSource("/api/v1/watch");
  es.addEventListener("status", ev => { const s = JSON.parse(ev.data); routes[s.name] = s; render(); });
  es.onerror = () => { es.close(); setTimeout(connect, 1000); };
}
connect();
setInterval(() => fetch("/api/v1/rollouts").then(r => r.json()).then(j => { for (const s of j.rollouts) routes[s.name] = s; render(); }).catch(() => {}), 5000);
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace canary::admin
