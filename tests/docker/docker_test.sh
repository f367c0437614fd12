#!/usr/bin/env bash
# The container images without a Docker engine (these machines have none): the Dockerfile runs only
# the project's own scripts; the runtime image is debian:bookworm-slim with a numeric non-root user,
# an exec-form entrypoint and a HEALTHCHECK through `dgsr health`; the runtime package list
# (scripts/install_deps.sh --runtime) provides every library the built binary links; the compose
# file has the server, the scheduled trainer and Prometheus. The build stage itself is what CI runs
# on a clean clone (install_deps.sh, then build.sh).
# Usage: docker_test.sh REPO_DIR PATH/TO/dgsr
set -uo pipefail
REPO=${1:?usage: docker_test.sh REPO_DIR PATH/TO/dgsr}
DGSR=${2:?usage: docker_test.sh REPO_DIR PATH/TO/dgsr}
source "$(dirname "$0")/../testutil/check.sh"
DOCKERFILE="$REPO/docker/Dockerfile"

# RUN instructions, continuation lines joined.
runs=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$DOCKERFILE" | sed -n 's/^RUN //p')
[[ -n "$runs" ]] || fail "no RUN instruction found"
while IFS= read -r run; do
  # Split on && and check each command's program against what the images may run.
  while IFS= read -r cmd; do
    prog=$(awk '{print $1}' <<<"$cmd")
    case "$prog" in
      ./scripts/install_deps.sh|./scripts/build.sh|/tmp/install_deps.sh|rm|mkdir|chown) ;;
      *) fail "RUN runs '$prog', not one of the project's scripts: $cmd" ;;
    esac
  done < <(sed 's/ *&& */\n/g' <<<"$run" | sed 's/^ *//; /^$/d')
done <<<"$runs"
[[ $failures -eq 0 ]] && ok "every RUN step is the project's install or build script (or mkdir/chown/rm)"

grep -q '^FROM debian:bookworm AS build$' "$DOCKERFILE" && ok "build stage: debian:bookworm" || fail "build stage base"
grep -q '^FROM debian:bookworm-slim AS runtime$' "$DOCKERFILE" && ok "runtime: debian:bookworm-slim" || fail "runtime base"
grep -q 'COPY scripts/install_deps.sh' "$DOCKERFILE" && grep -q 'install_deps.sh --runtime' "$DOCKERFILE" &&
  ok "runtime libraries from install_deps.sh --runtime" || fail "runtime install step"
grep -Eq '^USER [0-9]+:[0-9]+$' "$DOCKERFILE" && ok "numeric non-root user" || fail "USER is not numeric"
grep -Eq '^ENTRYPOINT \["/usr/local/bin/dgsr"\]$' "$DOCKERFILE" && ok "exec-form entrypoint" || fail "ENTRYPOINT"
grep -A1 '^HEALTHCHECK' "$DOCKERFILE" | grep -q '"health", "--server=127.0.0.1:50051"' &&
  ok "HEALTHCHECK through dgsr health" || fail "HEALTHCHECK"
for target in server trainer; do
  grep -Eq "^FROM runtime AS $target$" "$DOCKERFILE" && ok "target $target" || fail "no target $target"
done

# Every library the binary links comes from a runtime package (or from the base image's libc).
runtime=" $("$REPO/scripts/install_deps.sh" --print-runtime-packages) libc6 libgcc-s1 "
while read -r lib; do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
  [[ -n "$path" ]] || { fail "$lib (linked by dgsr) is not installed here"; continue; }
  real=$(readlink -f "$path")
  pkg=""
  # Debian's merged /usr: dpkg may know the file under /lib rather than /usr/lib, or the reverse.
  for candidate in "$real" "$path" "${real#/usr}" "/usr${real}"; do
    pkg=$(dpkg -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1)
    [[ -n "$pkg" ]] && break
  done
  [[ -n "$pkg" && " $runtime " == *" $pkg "* ]] && ok "$lib <- $pkg" || fail "$lib comes from $pkg, which the runtime image does not install"
done < <(readelf -d "$DGSR" | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}')

compose="$REPO/docker/docker-compose.yml"
for service in server trainer prometheus; do
  grep -Eq "^  $service:$" "$compose" && ok "compose service $service" || fail "compose lacks $service"
done
grep -q 'dgsr snapshot --server=server:50051' "$compose" && ok "the trainer retrains from a live snapshot" ||
  fail "compose trainer"
grep -q 'targets: \["server:9464"\]' "$REPO/docker/prometheus.yml" && ok "Prometheus scrapes the server" ||
  fail "prometheus.yml"

if [[ $failures -gt 0 ]]; then
  echo "$failures docker check(s) failed"
  exit 1
fi
echo "all docker checks passed"
