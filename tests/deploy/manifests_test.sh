#!/usr/bin/env bash
# Renders the Kubernetes manifests (kubectl kustomize, offline) and checks the objects that matter:
# kinds, gRPC probes on the serving port, ports, the security context, the retraining CronJob's
# concurrency policy, and the GPU overlay. Exit 77 (ctest: skipped) where kubectl is absent.
# Usage: manifests_test.sh DEPLOY_DIR
set -uo pipefail
DEPLOY=${1:?usage: manifests_test.sh DEPLOY_DIR}
source "$(dirname "$0")/../testutil/check.sh"
if ! command -v kubectl >/dev/null; then
  echo "SKIPPED: kubectl not installed (it is not in Debian's repositories)"
  exit 77
fi

cpu=$(kubectl kustomize "$DEPLOY" 2>&1) || { echo "FAIL: kubectl kustomize $DEPLOY: $cpu"; exit 1; }
gpu=$(kubectl kustomize "$DEPLOY/overlays/gpu" 2>&1) || { echo "FAIL: kubectl kustomize overlays/gpu: $gpu"; exit 1; }
ok "both render"

# has TEXT PATTERN NAME: TEXT matches the extended regular expression PATTERN.
has() { grep -Eq -- "$2" <<<"$1" && ok "$3" || fail "$3 (no /$2/)"; }
count() { grep -Ec -- "$2" <<<"$1"; }

for kind in Namespace StatefulSet Service PodDisruptionBudget CronJob PersistentVolumeClaim ConfigMap; do
  has "$cpu" "^kind: $kind$" "kind $kind"
done
[[ $(count "$cpu" "^kind: Deployment$") -eq 0 ]] && ok "no Deployment (the store is single-writer)" || fail "a Deployment"
# The server: one replica, gRPC probes on 50051, ports, resources, non-root and read-only.
server=$(awk '/^kind: StatefulSet$/,/^---$/' <<<"$cpu")
has "$server" "replicas: 1$" "one server replica"
[[ $(grep -Ec "^ *grpc:$" <<<"$server") -eq 3 ]] && ok "startup, readiness and liveness probes are gRPC" ||
  fail "expected 3 gRPC probes, got $(grep -Ec '^ *grpc:$' <<<"$server")"
[[ $(grep -Ec "^ *port: 50051$" <<<"$server") -eq 3 ]] && ok "the probes ask port 50051" || fail "probe ports"
for probe in startupProbe readinessProbe livenessProbe; do has "$server" "$probe:" "$probe"; done
has "$server" "containerPort: 50051" "gRPC port"
has "$server" "containerPort: 9464" "metrics port"
has "$server" "runAsNonRoot: true" "runs as non-root"
has "$server" "runAsUser: 10001" "numeric user"
has "$server" "readOnlyRootFilesystem: true" "read-only root file system"
has "$server" "allowPrivilegeEscalation: false" "no privilege escalation"
has "$server" "- ALL" "capabilities dropped"
has "$server" "volumeClaimTemplates:" "the store on its own volume"
has "$server" "--store=/data/store" "store on the claimed volume"
has "$server" "--listen=0.0.0.0:50051" "listens on every interface"
has "$server" "memory: 8Gi" "memory limit"
has "$server" "prometheus.io/scrape: \"true\"" "scrape annotation"
has "$server" "terminationGracePeriodSeconds: 45" "grace period longer than the drain timeout"
cron=$(awk '/^kind: CronJob$/,/^---$/' <<<"$cpu")
has "$cron" "concurrencyPolicy: Forbid" "retraining never overlaps"
has "$cron" "dgsr snapshot --server=dgsr-server:50051" "retrains from a live snapshot"
has "$cron" "runAsNonRoot: true" "retraining runs as non-root"
has "$cron" "--regression_gate" "retraining exports only past the regression gate"
has "$cron" "- 4$" "a gate refusal (exit 4) is not retried"
has "$cpu" "appProtocol: grpc" "the Service says gRPC"
has "$cpu" "job_name: dgsr-server" "Prometheus scrape job"
# The GPU overlay.
has "$gpu" "nvidia.com/gpu: 1" "GPU overlay asks for a GPU"
has "$gpu" "--device=cuda" "GPU overlay runs the model on CUDA"
has "$gpu" "image: registry.example.com/dgsr-cuda:latest" "GPU overlay uses the CUDA image"
has "$gpu" "key: nvidia.com/gpu" "GPU overlay tolerates GPU nodes"

if [[ $failures -gt 0 ]]; then
  echo "$failures manifest check(s) failed"
  exit 1
fi
echo "all manifest checks passed"
