#!/usr/bin/env bash
# The quick start: install, build, fill an embedded store with synthetic events, train a small
# model, and show recommendations for a few users. Serving on 127.0.0.1:50051 (metrics on :9464)
# joins this script when the gRPC server lands; until then the script says so and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
DGSR=build/bin/dgsr
WORK=${DGSR_QUICKSTART_DIR:-/tmp/dgsr-quickstart}
mkdir -p "$WORK"
step() { printf '\n==> %s\n' "$*"; }

step "1/4 Filling an embedded store with synthetic events ($WORK/store)"
rm -rf "$WORK/store" "$WORK/store.snapshots" "$WORK/models" "$WORK/run"
$DGSR synth --store="$WORK/store" --users=1000 --items=500 --events_per_user=30 --seed=1

step "2/4 Training a small DGSR model from a snapshot of the store, exporting it to $WORK/models"
$DGSR train --store="$WORK/store" --model_dir="$WORK/models" --run_dir="$WORK/run" \
  --dim=32 --epochs=2 --lr=0.005 --batch_size=100 --max_eval_samples=500 --dataset=synthetic

step "3/4 Recommendations for a few users (top 5, seen items excluded)"
$DGSR recommend --store="$WORK/store" --artifact="$WORK/models" --user_ids=u1,u2,u3,u4,u5 --k=5

step "4/4 Serving"
set +e
# When the server lands: --listen=127.0.0.1:50051 --metrics_listen=127.0.0.1:9464, until Ctrl-C.
$DGSR serve --store="$WORK/store" --model_dir="$WORK/models"
rc=$?
set -e
if [ $rc -eq 3 ]; then
  echo "The gRPC server (dgsr serve) is not built yet; the quick start ends here."
  exit 0
fi
exit $rc
