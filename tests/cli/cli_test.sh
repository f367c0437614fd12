#!/usr/bin/env bash
# End-to-end checks of the `dgsr` binary (registered with ctest as cli_test):
#   1. bad inputs give a clear error, a non-zero exit, and lose nothing already stored;
#   2. a training run killed with SIGKILL (twice, at different points) and started again with the
#      same command finishes with exactly the epochs, validation metrics and test metrics of a
#      run that was never interrupted.
# Usage: cli_test.sh PATH/TO/dgsr
set -uo pipefail

DGSR=${1:?usage: cli_test.sh PATH/TO/dgsr}
T=$(mktemp -d "${TMPDIR:-/tmp}/dgsr_cli_test.XXXXXX")
trap 'kill -9 $(jobs -p) 2>/dev/null; [[ -n "${KEEP:-}" ]] || rm -rf "$T"' EXIT
source "$(dirname "$0")/../testutil/check.sh"

# events STORE: the event count a store reports (importing an empty file adds nothing).
events() {
  : >"$T/empty.tsv"
  "$DGSR" import --store="$1" --format=uit --input="$T/empty.tsv" --kcore=0 2>&1 |
    sed -n 's/.*events=\([0-9]*\).*/\1/p' | tail -1
}

# --- 1. bad inputs -----------------------------------------------------------------------------
expect_error "train on a missing store" "NOT_FOUND: no store at" \
  "$DGSR" train --store="$T/absent" --run_dir="$T/r0"
expect_error "train on a missing snapshot" "NOT_FOUND|cannot open|does not exist|No such file" \
  "$DGSR" train --snapshot="$T/absent-snapshot" --run_dir="$T/r0"
expect_error "train without a data source" "give --snapshot=DIR or --store=DIR" \
  "$DGSR" train --run_dir="$T/r0"
expect_error "unknown subcommand" "unknown subcommand|Usage" "$DGSR" frobnicate

printf '1\t10\t100\n2\t11\t100\n3\t12\t100\n' >"$T/one_each.tsv"
"$DGSR" import --store="$T/one_each" --format=uit --input="$T/one_each.tsv" --kcore=0 >/dev/null 2>&1 ||
  fail "import of one event per user"
expect_error "train where every user has one event" "no user with at least 2 interactions" \
  "$DGSR" train --store="$T/one_each" --run_dir="$T/r1"

"$DGSR" synth --store="$T/syn" --users=300 --items=60 --events_per_user=24 >/dev/null 2>&1 || fail "synth"
before=$(events "$T/syn")
printf '1\t10\t100\n1\t11\t101\nthis line is not an event\n' >"$T/bad.tsv"
expect_error "import of a malformed file" "bad.tsv:3: expected 3 fields" \
  "$DGSR" import --store="$T/syn" --format=uit --input="$T/bad.tsv" --kcore=0
after=$(events "$T/syn")
if [[ -z "$before" || "$before" != "$after" ]]; then
  fail "a rejected import changed the store: events $before -> $after"
else
  echo "ok: the rejected import left the store's $after events as they were"
fi

echo "not a model" >"$T/corrupt.pt"
expect_error "eval with a corrupt model file" "DATA_LOSS: cannot load model artifact" \
  "$DGSR" eval --store="$T/syn" --artifact="$T/corrupt.pt"
mkdir -p "$T/models/1" && cp "$T/corrupt.pt" "$T/models/1/model.pt"
expect_error "recommend from a corrupt model version" "DATA_LOSS" \
  "$DGSR" recommend --store="$T/syn" --artifact="$T/models" --user_ids=1
expect_error "eval with a missing model directory" "NOT_FOUND|no model" \
  "$DGSR" eval --store="$T/syn" --artifact="$T/no-models"

# --- 2. a killed training run resumes exactly ------------------------------------------------
# train RUN_DIR: one training run of a few seconds per epoch (exec: a background `train &` is the
# dgsr process itself, so that kill -9 reaches it).
train() {
  exec "$DGSR" train --store="$T/syn" --epochs=4 --patience=9 --dim=16 --torch_threads=1 --popularity=0 \
    --run_dir="$1" --model_dir="$1/models"
}

# lines FILE: its number of lines (0 if absent).
lines() { [[ -f "$1" ]] && wc -l <"$1" || echo 0; }

# The per-epoch figures that must not depend on interruptions (timings excluded).
epoch_figures() { grep -o '"valid_[a-z_@0-9]*":[^,]*\|"epoch":[0-9]*\|"train_loss":[^,]*' "$1" | grep -v valid_seconds; }
test_figures() { grep -o '"test_[a-z_@0-9]*":[^,]*\|"best_epoch":[0-9]*' "$1"; }

(train "$T/straight") >"$T/straight.log" 2>&1 || fail "uninterrupted training run (log: $(tail -3 "$T/straight.log"))"

# Kill the run as soon as epoch 1 is logged (inside or just after its commit), then as soon as the
# restarted run logs epoch 2; then let a third start finish.
for kill_after in 1 2; do
  train "$T/killed" >>"$T/killed.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do
    [[ $(lines "$T/killed/metrics.jsonl") -ge $kill_after ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ $kill_after -eq 2 ]]; then  # (after the first kill, which must land right after epoch 1)
    expect_error "a second training process on a run directory in use" "in use by another training process" \
      "$DGSR" train --store="$T/syn" --epochs=4 --patience=9 --dim=16 --torch_threads=1 --run_dir="$T/killed"
  fi
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  status=$?
  committed=$(grep -o '"next_epoch":[0-9]*' "$T/killed/checkpoint/state.json" 2>/dev/null | cut -d: -f2)
  if [[ $status -ne 137 || "${committed:-0}" -ge 4 ]]; then
    fail "kill $kill_after did not interrupt the run (exit status $status, epochs committed: ${committed:-none})"
  fi
  echo "killed the training run after epoch line $kill_after ($committed epochs committed); checkpoint: $(ls "$T/killed/checkpoint" | tr '\n' ' ')"
done
(train "$T/killed") >>"$T/killed.log" 2>&1 || fail "resumed training run (log: $(tail -3 "$T/killed.log"))"

if ! diff <(epoch_figures "$T/straight/metrics.jsonl") <(epoch_figures "$T/killed/metrics.jsonl") >/dev/null; then
  fail "the killed-and-resumed run's epochs differ from the uninterrupted run's:
$(diff <(epoch_figures "$T/straight/metrics.jsonl") <(epoch_figures "$T/killed/metrics.jsonl") | head -20)"
elif [[ $(grep -c '"epoch"' "$T/killed/metrics.jsonl") -ne 4 ]]; then
  fail "expected 4 epoch lines, got: $(grep -o '"epoch":[0-9]*' "$T/killed/metrics.jsonl" | tr '\n' ' ')"
else
  echo "ok: metrics.jsonl after two kills: 4 epochs, identical validation figures and losses"
fi
if [[ -z "$(test_figures "$T/straight/summary.json")" ]] ||
  ! diff <(test_figures "$T/straight/summary.json") <(test_figures "$T/killed/summary.json") >/dev/null; then
  fail "test metrics differ: $(test_figures "$T/straight/summary.json" | head -3) vs $(test_figures "$T/killed/summary.json" | head -3)"
else
  echo "ok: identical test metrics ($(test_figures "$T/killed/summary.json" | grep ndcg@10 | tr '\n' ' '))"
fi
[[ -f "$T/killed/models/1/model.pt" ]] || fail "the resumed run exported no model version"

# --- 3. the regression gate ---------------------------------------------------------------------
# A barely trained model against the trained version 1 in the same model directory: refused (exit 4,
# nothing exported, both figures printed); with a tolerance of 1 it passes and exports version 2.
weak=(--store="$T/syn" --model_dir="$T/killed/models" --dim=16 --epochs=1 --max_train_samples=10 --lr=0.00001
      --max_eval_samples=200 --torch_threads=1 --regression_gate)
out=$("$DGSR" train "${weak[@]}" --run_dir="$T/gate1" 2>&1)
rc=$?
if [[ $rc -eq 4 ]] && grep -q "regression gate: .*REFUSED, not exported" <<<"$out" && [[ ! -d "$T/killed/models/2" ]]; then
  echo "ok: regression gate refused a worse model: $(grep -o 'regression gate: validation.*' <<<"$out")"
else
  fail "regression gate should refuse (exit 4, no version 2): exit $rc; $(grep -i gate <<<"$out" | head -3)"
fi
grep -q '"gate":"refused"' "$T/gate1/summary.json" || fail "summary.json does not record the refusal"
out=$("$DGSR" train "${weak[@]}" --run_dir="$T/gate2" --gate_tolerance=1 2>&1)
rc=$?
[[ $rc -eq 0 && -f "$T/killed/models/2/model.pt" ]] && echo "ok: with tolerance 1 the gate passes and version 2 is exported" ||
  fail "gate with tolerance 1: exit $rc; $(grep -i gate <<<"$out" | head -3)"

# --- 4. warm start: only from a model of this store, with its model flags ------------------------
"$DGSR" synth --store="$T/other" --users=60 --items=30 --events_per_user=12 --seed=9 >/dev/null 2>&1 || fail "synth other"
"$DGSR" train --store="$T/other" --model_dir="$T/other-models" --dim=16 --epochs=1 --max_train_samples=50 \
  --max_eval_samples=50 --torch_threads=1 --popularity=0 >/dev/null 2>&1 || fail "train on the other store"
warm=(--store="$T/syn" --epochs=1 --max_train_samples=50 --max_eval_samples=50 --torch_threads=1 --popularity=0)
expect_error "a warm start from another store's model" "was trained on store .*its ids would mean other users" \
  "$DGSR" train "${warm[@]}" --dim=16 --warm_start="$T/other-models"
expect_error "a warm start with other model flags" "another 'dim' \(16 against 24 requested\)" \
  "$DGSR" train "${warm[@]}" --dim=24 --warm_start="$T/killed/models/1"
expect_error "a warm start from a path with no model" "no model at" \
  "$DGSR" train "${warm[@]}" --dim=16 --warm_start="$T/nothing-here"
out=$("$DGSR" train "${warm[@]}" --dim=16 --warm_start="$T/killed/models/1" --run_dir="$T/warm" 2>&1) ||
  fail "warm start: $(tail -3 <<<"$out")"
grep -q '"warm_start":".*killed/models/1/model.pt"' "$T/warm/summary.json" && echo "ok: warm start from version 1 recorded" ||
  fail "warm start not recorded: $(cat "$T/warm/summary.json")"
mkdir -p "$T/empty-models"
out=$("$DGSR" train "${warm[@]}" --dim=16 --warm_start="$T/empty-models" 2>&1) || fail "warm start from an empty directory: $out"
grep -q "no model version to warm-start from; training from scratch" <<<"$out" &&
  echo "ok: a model directory with no version yet trains from scratch, and says so" || fail "first scheduled run: $out"

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all CLI checks passed"
