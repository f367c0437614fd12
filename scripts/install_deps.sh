#!/usr/bin/env bash
# Installs every build and run-time dependency of dgsr from Debian 12 packages.
# Idempotent: safe to run again; it only installs what is missing and re-selects BLIS.
# Run as root (or it re-runs itself with sudo).
#   install_deps.sh                            everything to build, test and run
#   install_deps.sh --runtime                  only what the built `dgsr` binary needs to run (the
#                                              container runtime image; no compilers, no buf)
#   install_deps.sh --print-runtime-packages   print that runtime list and exit (for tests)
set -euo pipefail

# The packages whose libraries the dgsr binary links (apt adds their own dependencies), and the
# fast BLAS that libtorch must find at run time.
RUNTIME_PACKAGES=(
  libtorch1.13 libgrpc++1.51 libgrpc29 libprotobuf32 librocksdb7.8 libabsl20220623
  libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libstdc++6 libgomp1 libblis4-openmp
)
MODE=${1:-all}
case "$MODE" in
  all|--runtime) ;;
  --print-runtime-packages) echo "${RUNTIME_PACKAGES[@]}"; exit 0 ;;
  *) echo "usage: install_deps.sh [--runtime|--print-runtime-packages]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi
  echo "[install] run this as root (or install sudo): it installs Debian packages" >&2
  exit 1
fi

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  librocksdb-dev libabsl-dev prometheus-cpp-dev
  libtorch-dev libgtest-dev libgmock-dev googletest
  # A fast BLAS: Debian's reference BLAS makes libtorch ~30x slower (docs/PLATFORM notes).
  libblis4-openmp
)
if [ "$MODE" = --runtime ]; then PACKAGES=("${RUNTIME_PACKAGES[@]}"); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[install] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[install] all packages present"
fi

# Make BLIS the system BLAS/LAPACK so libtorch does not fall back to the reference BLAS.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  cand=$(update-alternatives --list "${lib}-${arch}" 2>/dev/null | grep -m1 blis || true)
  if [ -n "$cand" ]; then update-alternatives --quiet --set "${lib}-${arch}" "$cand"; fi
done
echo "[install] BLAS: $(readlink -f /usr/lib/${arch}/libblas.so.3)"

if [ "$MODE" = --runtime ]; then exit 0; fi

# buf (proto lint, and `buf curl`, a generic gRPC client that uses the server's reflection) is not
# in Debian; install it from npm into /opt/dgsr-tools where npm exists. Optional: the proto lint
# test and the buf curl checks report SKIPPED without it.
BUF_VERSION=1.75.0
if [ -x /opt/dgsr-tools/node_modules/.bin/buf ] && \
   [ "$(/opt/dgsr-tools/node_modules/.bin/buf --version 2>/dev/null)" = "$BUF_VERSION" ]; then
  echo "[install] buf $BUF_VERSION present"
elif command -v npm >/dev/null; then
  if npm install --prefix /opt/dgsr-tools --silent --no-audit --no-fund "@bufbuild/buf@$BUF_VERSION" >/dev/null 2>&1; then
    echo "[install] buf $(/opt/dgsr-tools/node_modules/.bin/buf --version) in /opt/dgsr-tools"
  else
    echo "[install] note: npm could not install buf; the proto lint test will be skipped"
  fi
else
  echo "[install] note: npm not found; buf not installed (the proto lint test will be skipped)"
fi
