#!/usr/bin/env bash
# The warm-start measurement of docs/RESULTS.md ("Retraining: warm start against from scratch"),
# end to end with the real binary on a real dataset:
#   1. import the earliest ~90% of the events (cut at one time), hold out the rest;
#   2. train the "old" model from scratch on that store (the version a server would be serving);
#   3. serve it, ingest the held-out events through the server (gRPC IngestStream), take a live
#      snapshot (AdminService.CreateSnapshot), stop the server;
#   4. on that new snapshot: evaluate the old model, warm-start from it, and train from scratch,
#      each to convergence (the same early stopping), timing each.
# Prints one JSON object per model on its last lines and keeps everything under WORK.
#
# Usage: scripts/warm_start_experiment.sh [WORK_DIR] [extra dgsr train flags...]
#   DATASET (default: Amazon Beauty 5-core, the one dataset here with real timestamps),
#   FORMAT (uit), HOLD_OUT (0.1), DGSR (build/bin/dgsr).
# Needs ../shared/data; says SKIPPED and exits 0 without it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DGSR=${DGSR:-$ROOT/build/bin/dgsr}
DATASET=${DATASET:-$ROOT/../shared/data/amazon-beauty-5core-ticoserec/Beauty_interactions.tsv}
FORMAT=${FORMAT:-uit}
HOLD_OUT=${HOLD_OUT:-0.1}
WORK=${1:-$(mktemp -d "${TMPDIR:-/tmp}/dgsr_warm_start.XXXXXX")}
shift || true
TRAIN_FLAGS=(--patience=2 --epochs=12 "$@")

if [[ ! -f "$DATASET" ]]; then
  echo "SKIPPED: $DATASET not found (the real datasets live in ../shared/data)"
  exit 0
fi
mkdir -p "$WORK"
log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
# timed NAME CMD...: runs CMD with its output in WORK/NAME.log and records its wall seconds.
timed() {
  local name=$1 start end
  shift
  start=$(date +%s.%N)
  "$@" >"$WORK/$name.log" 2>&1 || { log "$name failed: $(tail -3 "$WORK/$name.log")"; exit 1; }
  end=$(date +%s.%N)
  awk "BEGIN { printf \"%.1f\\n\", $end - $start }" >"$WORK/$name.seconds"
  log "$name: $(cat "$WORK/$name.seconds") s"
}

if [[ ! -d "$WORK/models/1" ]]; then
  rm -rf "$WORK/store" "$WORK/store.snapshots"
  timed import "$DGSR" import --store="$WORK/store" --format="$FORMAT" --input="$DATASET" \
    --hold_out_fraction="$HOLD_OUT" --hold_out_file="$WORK/held_out.csv"
  timed train_old "$DGSR" train --store="$WORK/store" --model_dir="$WORK/models" --run_dir="$WORK/run_old" \
    "${TRAIN_FLAGS[@]}"
fi

if [[ ! -f "$WORK/snapshot.path" ]]; then
  PORT=$((20000 + RANDOM % 20000))
  "$DGSR" serve --store="$WORK/store" --model_dir="$WORK/models" --listen="127.0.0.1:$PORT" --metrics_listen= \
    >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  "$DGSR" health --server="127.0.0.1:$PORT" --wait_s=120 >/dev/null
  timed ingest "$DGSR" ingest --server="127.0.0.1:$PORT" --events_file="$WORK/held_out.csv"
  "$DGSR" snapshot --server="127.0.0.1:$PORT" --path_only >"$WORK/snapshot.path"
  kill -TERM $SERVER
  wait $SERVER || true
  trap - EXIT
  log "snapshot $(cat "$WORK/snapshot.path"); $(tail -1 "$WORK/ingest.log")"
fi
SNAP=$(cat "$WORK/snapshot.path")

[[ -f "$WORK/eval_old.log" ]] ||
  timed eval_old "$DGSR" eval --artifact="$WORK/models/1" --snapshot="$SNAP" --json
[[ -f "$WORK/run_warm/summary.json" ]] ||
  timed train_warm "$DGSR" train --snapshot="$SNAP" --warm_start="$WORK/models/1" --run_dir="$WORK/run_warm" \
    "${TRAIN_FLAGS[@]}"
[[ -f "$WORK/run_scratch/summary.json" ]] ||
  timed train_scratch "$DGSR" train --snapshot="$SNAP" --run_dir="$WORK/run_scratch" "${TRAIN_FLAGS[@]}"

for name in run_old run_warm run_scratch; do
  echo "{\"run\":\"$name\",\"summary\":$(cat "$WORK/$name/summary.json")}"
done
echo "{\"run\":\"eval_old_on_new_snapshot\",\"result\":$(tail -1 "$WORK/eval_old.log")}"
