#!/usr/bin/env bash
# The server as its users meet it, through the real `dgsr` binary (registered with ctest as
# serve_cli_test): `dgsr serve` on loopback, `dgsr health`, `dgsr ingest` and `dgsr recommend
# --server`, a raw HTTP scrape of /metrics, reflection through `buf curl` (where buf is installed),
# TLS with client certificates (where openssl is installed), bad inputs, and SIGTERM: NOT_SERVING,
# drain, flush, exit 0, with every acknowledged event in the store afterwards.
# Usage: serve_cli_test.sh PATH/TO/dgsr
set -uo pipefail

DGSR=${1:?usage: serve_cli_test.sh PATH/TO/dgsr}
T=$(mktemp -d "${TMPDIR:-/tmp}/dgsr_serve_test.XXXXXX")
trap 'kill -9 $(jobs -p) 2>/dev/null; [[ -n "${KEEP:-}" ]] || rm -rf "$T"' EXIT
source "$(dirname "$0")/../testutil/check.sh"

# start_server LOG FLAGS...: starts dgsr serve on free ports; sets SERVER, PORT, METRICS_PORT.
start_server() {
  local log=$1
  shift
  "$DGSR" serve --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 "$@" >"$log.out" 2>"$log" &
  SERVER=$!
  for _ in $(seq 1 600); do
    if grep -q "listening on port" "$log.out" 2>/dev/null; then break; fi
    if ! kill -0 $SERVER 2>/dev/null; then break; fi
    sleep 0.1
  done
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$log.out")
  METRICS_PORT=$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' "$log.out")
  [[ -n "$PORT" ]] || { fail "server did not start: $(tail -5 "$log")"; return 1; }
}

# http_get PORT PATH: the body of an HTTP/1.0 GET on 127.0.0.1 (bash /dev/tcp, no curl needed).
http_get() {
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}

# --- a store and a small trained model --------------------------------------------------------
"$DGSR" synth --store="$T/store" --users=200 --items=80 --events_per_user=20 >/dev/null 2>&1 || fail "synth"
"$DGSR" train --store="$T/store" --model_dir="$T/models" --run_dir="$T/run" --dim=16 --epochs=1 \
  --max_train_samples=500 --max_eval_samples=100 --torch_threads=1 >/dev/null 2>&1 || fail "train"
[[ -f "$T/models/1/model.pt" ]] || fail "no exported model"

expect_error "serve without a model" "model_dir .*required" "$DGSR" serve --store="$T/store" --listen=127.0.0.1:0
expect_error "serve from an empty model directory" "no loadable version" \
  "$DGSR" serve --store="$T/store" --model_dir="$T/no-models" --listen=127.0.0.1:0 --metrics_listen=
expect_error "recommend --server with nothing listening" "UNAVAILABLE" \
  "$DGSR" recommend --server=127.0.0.1:1 --user_ids=u1 --timeout_s=2

# --- serving ------------------------------------------------------------------------------------
start_server "$T/serve.log" --store="$T/store" --model_dir="$T/models" --model_poll_s=0.2 || exit 1
"$DGSR" health --server="127.0.0.1:$PORT" --wait_s=60 >/dev/null && ok "health: SERVING" || fail "health"
"$DGSR" health --server="127.0.0.1:$PORT" --service=dgsr.v1.RecommendationService >/dev/null &&
  ok "health of dgsr.v1.RecommendationService: SERVING" || fail "health of the service"
grep -q "effective config" "$T/serve.log" && ok "effective config logged" || fail "no effective config in the log"

out=$("$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1,u2,stranger --k=4 2>&1) || fail "recommend: $out"
grep -q "user u1  model default v1" <<<"$out" && ok "recommend answered by model default v1" || fail "recommend output: $out"
grep -q "user stranger .*fallback: FALLBACK_REASON_UNKNOWN_USER" <<<"$out" && ok "unknown user: fallback, and said so" ||
  fail "no fallback for an unknown user: $out"
top=$(sed -n '2s/^  recommended: \([^(]*\)(.*/\1/p' <<<"$out")
[[ -n "$top" ]] || fail "no top item for u1 in: $out"

# The same answer in-process is impossible while the server holds the store.
expect_error "in-process recommend on a store the server holds" "lock|LOCK|busy|in use" \
  "$DGSR" recommend --store="$T/store" --model_dir="$T/models" --user_ids=u1

# Ingest: read-your-writes, idempotency, atomic bad batches.
printf 'u1,%s,1900000000,evt-1\nstranger,%s,1900000001,evt-2\n' "$top" "$top" >"$T/events.csv"
out=$("$DGSR" ingest --server="127.0.0.1:$PORT" --events_file="$T/events.csv" 2>&1) || fail "ingest: $out"
grep -q "accepted 2, duplicates 0" <<<"$out" && ok "ingest: $out" || fail "ingest output: $out"
out=$("$DGSR" ingest --server="127.0.0.1:$PORT" --events_file="$T/events.csv" 2>&1)
grep -q "accepted 0, duplicates 2" <<<"$out" && ok "re-sent events are duplicates" || fail "idempotency: $out"
out=$("$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1,stranger --k=80 2>&1)
if sed -n '2p' <<<"$out" | grep -q " $top("; then fail "u1's new item is still recommended: $out"; else ok "u1's ingested item is excluded at once"; fi
grep -q "user stranger  model default v1$" <<<"$out" && ok "the new user is answered by the model after one event" ||
  fail "new user after ingest: $out"
printf 'u3,i1,1900000005\nu3,i2,not-a-time\n' >"$T/bad.csv"
expect_error "ingest of a malformed file sends nothing" "bad.csv:2: expected user,item,time" \
  "$DGSR" ingest --server="127.0.0.1:$PORT" --events_file="$T/bad.csv"
expect_error "ingest with a time out of range" "INVALID_ARGUMENT: .*events\[0\].time_unix_s" \
  "$DGSR" ingest --server="127.0.0.1:$PORT" --events="u3,i1,-5"
expect_error "recommend with k out of range" "INVALID_ARGUMENT: .*requests\[0\].k" \
  "$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1 --k=5000
expect_error "recommend from an unknown model" "NOT_FOUND" \
  "$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1 --model_name=nope

# A new version appears and serves; a corrupt one is rejected while the old one keeps serving.
"$DGSR" train --store="$T/store" --model_dir="$T/models" --run_dir="$T/run2" --dim=16 --epochs=1 \
  --max_train_samples=500 --max_eval_samples=100 --torch_threads=1 >/dev/null 2>&1 &&
  fail "train on a store held by the server should fail (the store is locked)" ||
  ok "offline train refuses the store the server holds"
mkdir -p "$T/models/.tmp-2" && echo "garbage" >"$T/models/.tmp-2/model.pt" && mv "$T/models/.tmp-2" "$T/models/2"
for _ in $(seq 1 50); do grep -q "model version rejected" "$T/serve.log" && break; sleep 0.1; done
grep -q "model version rejected.*version=2" "$T/serve.log" && ok "corrupt version 2 rejected (logged)" || fail "no rejection logged"
out=$("$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1 --k=3 2>&1)
grep -q "model default v1" <<<"$out" && ok "version 1 keeps serving" || fail "after a corrupt version: $out"

# The retraining loop, under load: a client calls Recommend for the whole of it; new events arrive
# through the server (new users and items, and more history for u1), a snapshot of the live store is
# taken, a trainer warm-starts from the serving version on it while the server keeps serving, the
# server swaps to the exported version, the affected users' recommendations change, and not one
# call fails.
(
  while [[ ! -f "$T/stop-client" ]]; do
    if "$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1,u2,stranger,fresh1 --k=5 >>"$T/client.log" 2>&1; then
      echo ok >>"$T/client.calls"
    else
      echo failed >>"$T/client.calls"
    fi
  done
) &
CLIENT=$!
: >"$T/new-events.csv"
for u in fresh1 fresh2 fresh3 fresh4 fresh5 fresh6; do
  for k in 1 2 3 4 5 6; do echo "$u,new-item-$(( (k + ${u#fresh}) % 4 )),$(( 1900000100 + ${u#fresh} * 10 + k ))" >>"$T/new-events.csv"; done
done
for k in 1 2 3; do echo "u1,new-item-$k,$(( 1900000200 + k ))" >>"$T/new-events.csv"; done
out=$("$DGSR" ingest --server="127.0.0.1:$PORT" --events_file="$T/new-events.csv" 2>&1) || fail "ingest of new events: $out"
grep -q "accepted 39, duplicates 0" <<<"$out" && ok "39 new events (6 new users, 4 new items) ingested under load" ||
  fail "ingest of new events: $out"
before=$("$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1,fresh1 --k=5 2>&1)
snap=$("$DGSR" snapshot --server="127.0.0.1:$PORT" --path_only 2>&1) || fail "snapshot: $snap"
[[ -d "$snap" ]] && ok "snapshot at $snap" || fail "no snapshot directory: $snap"
# The newest version on disk is the corrupt version 2: a warm start from it is a clear error.
expect_error "warm start from a corrupt version" "DATA_LOSS|not loadable|cannot" \
  "$DGSR" train --snapshot="$snap" --model_dir="$T/models" --run_dir="$T/run-bad" --dim=16 --epochs=1 \
  --max_train_samples=500 --max_eval_samples=100 --torch_threads=1 --warm_start="$T/models"
"$DGSR" train --snapshot="$snap" --model_dir="$T/models" --run_dir="$T/run3" --dim=16 --epochs=1 \
  --max_train_samples=500 --max_eval_samples=100 --torch_threads=1 --warm_start="$T/models/1" >"$T/train3.log" 2>&1 &&
  ok "warm-started from version 1 on the snapshot while the server runs" || fail "train on the snapshot: $(tail -3 "$T/train3.log")"
grep -q "warm start users=200 items=80 new_users=7 new_items=4" "$T/train3.log" &&
  grep -q "\"warm_start\":\"$T/models/1/model.pt\"" "$T/run3/summary.json" &&
  ok "the trainer started from version 1's weights, with 7 new users (stranger and 6 fresh) and 4 new items added" ||
  fail "no warm start in the trainer's log: $(grep -m2 "warm" "$T/train3.log")"
for _ in $(seq 1 100); do
  out=$("$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1,fresh1 --k=5 2>&1)
  grep -q "model default v3" <<<"$out" && break
  sleep 0.1
done
grep -q "model default v3" <<<"$out" && ok "the server swapped to the new version 3" || fail "no swap to v3: $out"
sleep 1  # a few more calls on the new version
touch "$T/stop-client"
wait $CLIENT
calls=$(grep -c . "$T/client.calls" 2>/dev/null || echo 0)
failed=$(grep -c failed "$T/client.calls" 2>/dev/null || true)
[[ $calls -ge 3 && ${failed:-0} -eq 0 ]] && ok "a client ran $calls RecommendBatch calls through ingest, snapshot, warm-start training and swap: 0 failed" ||
  fail "client during retraining: $calls calls, ${failed:-0} failed: $(grep -m3 -i error "$T/client.log")"
grep -q "model default v1" "$T/client.log" && grep -q "model default v3" "$T/client.log" &&
  ok "the client was answered by version 1, then version 3" || fail "client versions: $(grep -o 'v[0-9]' "$T/client.log" | sort | uniq -c)"
first_snap=$(ls -d "$T/store.snapshots"/* | sort | head -1)
expect_error "eval of version 3 on a snapshot older than the one it was trained on" "newer than this one" \
  "$DGSR" eval --artifact="$T/models/3" --snapshot="$first_snap" --max_eval_samples=20 --full_ranking=0
"$DGSR" eval --artifact="$T/models/3" --snapshot="$first_snap" --max_eval_samples=20 --full_ranking=0 --force \
  >/dev/null 2>&1 && ok "... and with --force it runs" || fail "eval --force on an older snapshot"
lists() { sed -n 's/^  recommended: //p' <<<"$1"; }
for who in u1 fresh1; do
  was=$(lists "$(grep -A1 "^user $who " <<<"$before")")
  now=$(lists "$(grep -A1 "^user $who " <<<"$out")")
  [[ -n "$now" && "$was" != "$now" ]] && ok "$who's recommendations changed with the new version" ||
    fail "$who's recommendations unchanged after retraining: $was / $now"
done

# Metrics over HTTP.
metrics=$(http_get "$METRICS_PORT" /metrics)
for series in dgsr_requests_total dgsr_request_duration_seconds_bucket dgsr_stage_duration_seconds_bucket \
  dgsr_batch_size_bucket dgsr_ingested_events_total dgsr_model_loads_total dgsr_model_serving_version \
  dgsr_graph_interactions process_cpu_seconds_total process_resident_memory_bytes; do
  grep -q "^$series" <<<"$metrics" || fail "metrics lack $series"
done
grep -q 'dgsr_model_loads_total{model="default",result="failed"} 1' <<<"$metrics" &&
  ok "/metrics scraped over HTTP; the rejected load is counted" || fail "failed load not counted: $(grep loads <<<"$metrics")"

# Reflection, through a standard generic client (buf curl), where buf is installed.
BUF=$(command -v buf || true)
for candidate in /opt/dgsr-tools/node_modules/.bin/buf "$(dirname "$0")/../../build/tools/node_modules/.bin/buf"; do
  [[ -z "$BUF" && -x "$candidate" ]] && BUF=$candidate
done
if [[ -n "$BUF" ]]; then
  out=$("$BUF" curl --protocol grpc --http2-prior-knowledge --list-methods "http://127.0.0.1:$PORT" 2>&1)
  grep -q "dgsr.v1.RecommendationService/Recommend" <<<"$out" && ok "buf curl lists the methods by reflection" ||
    fail "buf curl --list-methods: $out"
  out=$("$BUF" curl --protocol grpc --http2-prior-knowledge -d '{"user_id":"u2","k":2}' \
    "http://127.0.0.1:$PORT/dgsr.v1.RecommendationService/Recommend" 2>&1)
  grep -q '"itemId"' <<<"$out" && ok "buf curl Recommend: $(tr -d '\n ' <<<"$out" | cut -c1-80)" || fail "buf curl Recommend: $out"
else
  echo "SKIPPED: buf not installed (scripts/install_deps.sh installs it where npm is available)"
fi

# SIGTERM: exit 0, drained and flushed; the acknowledged events are in the store afterwards.
kill -TERM $SERVER
wait $SERVER
rc=$?
[[ $rc -eq 0 ]] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc; $(tail -3 "$T/serve.log")"
grep -q "shutting down: NOT_SERVING" "$T/serve.log" && grep -q "shut down store_sync=ok" "$T/serve.log" &&
  ok "shutdown logged: NOT_SERVING, drained, store synced" || fail "shutdown log: $(tail -3 "$T/serve.log")"
out=$("$DGSR" recommend --store="$T/store" --artifact="$T/models/1/model.pt" --user_ids=stranger --k=3 2>&1)
grep -q "user stranger  recent: $top" <<<"$out" && ok "after shutdown the store holds the ingested events" ||
  fail "in-process after shutdown: $out"

# Restarting with a broken newest version: it is rejected, the next older one serves.
mkdir -p "$T/models/.tmp-4" && echo "garbage" >"$T/models/.tmp-4/model.pt" && mv "$T/models/.tmp-4" "$T/models/4"
start_server "$T/restart.log" --store="$T/store" --model_dir="$T/models" || exit 1
out=$("$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1 --k=3 2>&1)
grep -q "model default v3" <<<"$out" && ok "restart with a broken newest version 4: version 3 serves" || fail "restart: $out"
kill -TERM $SERVER
wait $SERVER || fail "restarted server: exit $?"

# --- TLS with client certificates ---------------------------------------------------------------
if command -v openssl >/dev/null; then
  (
    cd "$T" &&
      openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=dgsr-test-ca &&
      openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost &&
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext &&
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext &&
      openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=dgsr-writer &&
      openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2
  ) >/dev/null 2>&1 || fail "openssl could not make test certificates"
  start_server "$T/tls.log" --store="$T/store" --model_dir="$T/models" --tls_cert="$T/server.pem" \
    --tls_key="$T/server.key" --tls_client_ca="$T/ca.pem" --restrict_writes || exit 1
  "$DGSR" health --server="127.0.0.1:$PORT" --tls_ca="$T/ca.pem" --wait_s=60 >/dev/null && ok "TLS: health" || fail "TLS health"
  out=$("$DGSR" recommend --server="127.0.0.1:$PORT" --tls_ca="$T/ca.pem" --user_ids=u1 --k=2 2>&1)
  grep -q "model default" <<<"$out" && ok "TLS: recommend without a client certificate" || fail "TLS recommend: $out"
  expect_error "TLS: writes need a client certificate" "UNAUTHENTICATED" \
    "$DGSR" ingest --server="127.0.0.1:$PORT" --tls_ca="$T/ca.pem" --events="u1,i1,1900000100"
  out=$("$DGSR" ingest --server="127.0.0.1:$PORT" --tls_ca="$T/ca.pem" --tls_client_cert="$T/client.pem" \
    --tls_client_key="$T/client.key" --events="u1,i1,1900000100" 2>&1)
  grep -q "accepted 1" <<<"$out" && ok "TLS: ingest with a verified client certificate" || fail "TLS ingest: $out"
  expect_error "plaintext client against a TLS server" "UNAVAILABLE" \
    "$DGSR" recommend --server="127.0.0.1:$PORT" --user_ids=u1 --timeout_s=3
  expect_error "TLS: admin calls need a client certificate" "UNAUTHENTICATED" \
    "$DGSR" snapshot --server="127.0.0.1:$PORT" --tls_ca="$T/ca.pem"
  kill -TERM $SERVER
  wait $SERVER || fail "TLS server: exit $?"
else
  echo "SKIPPED: openssl not installed; TLS not tested"
fi

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed (files kept in $T if KEEP=1)"
  exit 1
fi
echo "all serve CLI checks passed"
