#!/usr/bin/env bash
# `make run`: the blue and green demo backends, a faulty yellow one (every other answer a 500),
# and the proxy on the demo config, in the foreground. The backends' ports are the endpoints of
# config/canary-demo.yaml's upstreams (tests/e2e/test_demo.py checks they agree).
# Ctrl-C stops all of it.
set -euo pipefail
bin=${1:-build/bin}
config=${2:-config/canary-demo.yaml}
pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$bin/canary-proxy" --config "$config" --check
"$bin/demo-backend" --listen 127.0.0.1:9001 --color blue & pids+=($!)
"$bin/demo-backend" --listen 127.0.0.1:9002 --color green & pids+=($!)
"$bin/demo-backend" --listen 127.0.0.1:9003 --color yellow --error-rate 0.5 & pids+=($!)
"$bin/canary-proxy" --config "$config" & pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS -o /dev/null http://127.0.0.1:9901/readyz 2>/dev/null && break
  sleep 0.1
done

cat <<MSG

  canary-proxy demo is running (Ctrl-C stops it)

  App (through the proxy):  http://127.0.0.1:8080/
  Dashboard:                http://127.0.0.1:9901/
  Metrics:                  http://127.0.0.1:9901/metrics

  Next, in another terminal:
    $bin/canaryctl get canary-demo
    $bin/canaryctl set-upstream canary-demo green     # start the canary: 20 % to green, then pause
    $bin/canaryctl get canary-demo --watch
    curl -H 'X-Canary: always' http://127.0.0.1:8080/color   # always green while it runs
    $bin/canaryctl promote canary-demo                # 50 %, then 70 %, 30 s each, then 100 %
    $bin/canaryctl abort canary-demo                  # or: everything back to blue
    $bin/canaryctl set-upstream canary-demo yellow    # a bad version: half its answers are 500
    $bin/canaryctl analysis canary-demo               # what the analysis measured
  Or edit 'upstream:' in $config and run: $bin/canaryctl reload

MSG
wait -n "${pids[@]}"
