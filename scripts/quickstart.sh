#!/usr/bin/env bash
# The quick start: install, build, fill an embedded store with synthetic events, train a small
# model, serve it over gRPC, send a few live events, and show recommendations before and after.
# The server is stopped (SIGTERM: drain, flush, exit 0) before the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
DGSR=build/bin/dgsr
WORK=${DGSR_QUICKSTART_DIR:-/tmp/dgsr-quickstart}
PORT=${DGSR_QUICKSTART_PORT:-50051}
METRICS_PORT=${DGSR_QUICKSTART_METRICS_PORT:-9464}
mkdir -p "$WORK"
step() { printf '\n==> %s\n' "$*"; }

step "1/5 Filling an embedded store with synthetic events ($WORK/store)"
rm -rf "$WORK/store" "$WORK/store.snapshots" "$WORK/models" "$WORK/run"
$DGSR synth --store="$WORK/store" --users=1000 --items=500 --events_per_user=30 --seed=1

step "2/5 Training a small DGSR model from a snapshot of the store, exporting it to $WORK/models"
$DGSR train --store="$WORK/store" --model_dir="$WORK/models" --run_dir="$WORK/run" \
  --dim=32 --epochs=2 --lr=0.005 --batch_size=100 --max_eval_samples=500 --dataset=synthetic

step "3/5 Serving it: gRPC on 127.0.0.1:$PORT, Prometheus metrics on 127.0.0.1:$METRICS_PORT"
$DGSR serve --store="$WORK/store" --model_dir="$WORK/models" --listen="127.0.0.1:$PORT" \
  --metrics_listen="127.0.0.1:$METRICS_PORT" 2>"$WORK/serve.log" &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
$DGSR health --server="127.0.0.1:$PORT" --wait_s=120
echo "(server log: $WORK/serve.log)"

step "4/5 Recommendations from the server (top 5, seen items excluded), then live events"
$DGSR recommend --server="127.0.0.1:$PORT" --user_ids=u1,u2,newcomer --k=5
now=$(date +%s)
# u1 just interacted with the items the server recommended to it; a new user arrives.
items=$($DGSR recommend --server="127.0.0.1:$PORT" --user_ids=u1 --k=3 | sed -n 's/^  recommended://p' |
        tr ' ' '\n' | sed -n 's/(.*//p' | head -3)
events=""
t=$now
for i in $items; do events="$events;u1,$i,$t,quickstart-u1-$i"; t=$((t + 1)); done
events="$events;newcomer,i1,$t,quickstart-newcomer-1"
$DGSR ingest --server="127.0.0.1:$PORT" --events="${events#;}"
echo "after the events (u1's new items are now excluded; the newcomer is answered by the model):"
$DGSR recommend --server="127.0.0.1:$PORT" --user_ids=u1,u2,newcomer --k=5
echo "a few of the server's metrics:"
if command -v curl >/dev/null; then
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | grep -E '^dgsr_(requests_total|ingested_events_total|model_serving_version)' || true
fi

step "5/5 Stopping the server (SIGTERM: NOT_SERVING, drain, flush the store, exit 0)"
kill -TERM $SERVER
trap - EXIT
wait $SERVER
echo "server exited with status $?; the store in $WORK/store holds the ingested events."
