#!/usr/bin/env bash
# Reproduce every figure in docs/benchmarks.md (about 10 minutes on a 2-core machine).
# usage: bench/run_benchmarks.sh [WORKDIR]   (needs ./scripts/demo.sh or test.sh to have made .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/distillshield-bench}
mkdir -p "$W"
BIN=.venv/bin
echo "## simulator, default scenario (3 runs)"
$BIN/python bench/bench_simulate.py --scenario default --repeat 3 --out "$W/default"
echo "## seed-scale: simulate, baseline detector, evaluate (1 run each)"
/usr/bin/time -f "simulate: %e s wall, %M KB peak RSS" $BIN/distillshield simulate --scenario seed-scale --out "$W/seed" --overwrite >/dev/null
du -sh "$W/seed"
/usr/bin/time -f "baseline: %e s wall, %M KB peak RSS" $BIN/distillshield baseline "$W/seed" --out "$W/seed-det" >/dev/null
/usr/bin/time -f "evaluate: %e s wall, %M KB peak RSS" $BIN/distillshield evaluate --labels "$W/seed/labels" --detections "$W/seed-det" --json "$W/seed-eval.json" >/dev/null
$BIN/python -c "import json; m=json.load(open('$W/seed/manifest.json')); print('exchanges', m['exchanges'], 'accounts', m['accounts'])"
rm -rf "$W/seed" "$W/seed-det"
echo "## ingest + request signals + enrichment, content and --no-content interleaved (3 runs each)"
$BIN/distillshield simulate --out "$W/sim" --overwrite >/dev/null
for i in 1 2 3; do
  for mode in content no-content; do
    rm -rf "$W/ing"; flag=""; [ "$mode" = no-content ] && flag="--no-content"
    /usr/bin/time -f "$mode run $i: %e s wall, %M KB peak RSS" $BIN/distillshield ingest --format canonical "$W/sim" --out "$W/ing" $flag >/dev/null
  done
done
/usr/bin/time -f "templates step (fingerprints): %e s wall, %M KB peak RSS" $BIN/distillshield prepare "$W/ing" --steps templates >/dev/null
rm -rf "$W/sim" "$W/ing"
echo "## scan and replay (issue 4): default scenario, prepared once; scan 3 runs, replay 1 run"
$BIN/distillshield simulate --out "$W/scan" --overwrite >/dev/null
/usr/bin/time -f "prepare: %e s wall, %M KB peak RSS" $BIN/distillshield prepare "$W/scan" >/dev/null
for i in 1 2 3; do
  /usr/bin/time -f "scan run $i: %e s wall, %M KB peak RSS" $BIN/distillshield scan "$W/scan" --out "$W/scan-det" >/dev/null
done
$BIN/python -c "import json; r=json.load(open('$W/scan-det/scan.json')); print('exchanges', r['summary']['exchanges']); [print(s['name'], s['rows'], s['seconds']) for s in r['steps']]"
/usr/bin/time -f "replay --every 6h: %e s wall, %M KB peak RSS" $BIN/distillshield replay "$W/scan" --out "$W/replay-det" --every 6h >/dev/null
rm -rf "$W/scan" "$W/scan-det" "$W/replay-det"
echo "## scan at seed scale (issue 4): simulate, prepare, scan (1 run each)"
$BIN/distillshield simulate --scenario seed-scale --out "$W/seed" --overwrite >/dev/null
/usr/bin/time -f "prepare: %e s wall, %M KB peak RSS" $BIN/distillshield prepare "$W/seed" >/dev/null
/usr/bin/time -f "scan: %e s wall, %M KB peak RSS" $BIN/distillshield scan "$W/seed" --out "$W/seed-scan" >/dev/null
$BIN/python -c "import json; r=json.load(open('$W/seed-scan/scan.json')); print('exchanges', r['summary']['exchanges']); [print(s['name'], s['rows'], s['seconds']) for s in r['steps']]"
$BIN/distillshield evaluate --labels "$W/seed/labels" --detections "$W/seed-scan" --json "$W/seed-scan-eval.json" >/dev/null
rm -rf "$W/seed" "$W/seed-scan"
echo "## gateway: what --workers N costs (metrics in multiprocess mode; cohort windows shared through redis)"
$BIN/python bench/bench_metrics_multiprocess.py --rounds 7
$BIN/python bench/bench_cohort_share.py --rounds 5
