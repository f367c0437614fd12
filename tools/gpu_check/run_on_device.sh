#!/usr/bin/env bash
# Builds tools/gpu_check against Python torch's libtorch (CUDA) and the copied Debian abseil in
# .gpu/absl, then runs serving_check (CPU and CUDA in one run). Meant for the lent GPU machine:
#
#   bash tools/gpu_check/run_on_device.sh            (from the repository root; carry .gpu)
#
# Writes $OUT/run.log (everything), $OUT/serving_check.txt (the program's output),
# $OUT/serving_check.json (its last line) and, if configuring fails, the CMake logs.
# Environment: OUT (default /tmp/gpu_check_out), BUILD_DIR (default /tmp/gpu-check-build),
# SERVING_CHECK_ARGS (default "--reps=300 --warmup=30 --max_seconds=8").
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-/tmp/gpu_check_out}"
BUILD_DIR="${BUILD_DIR:-/tmp/gpu-check-build}"
ARGS="${SERVING_CHECK_ARGS:---reps=300 --warmup=30 --max_seconds=8}"
ABSL="$REPO/.gpu/absl"
mkdir -p "$OUT"

fail() { echo "run_on_device: ERROR: $*" >&2; exit 1; }
step() { echo; echo "==== $* ($(date +%T))"; }

main() {
  local t_start=$SECONDS
  step "machine"
  uname -a
  nproc
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi failed"
  command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
  nvcc --version | tail -2 || echo "no nvcc on PATH (CUDAToolkit may not be found)"
  c++ --version | head -1 || fail "no C++ compiler (c++)"
  cmake --version | head -1 || fail "no cmake"
  ninja --version || fail "no ninja"

  step "python torch"
  python3 - <<'EOF' || fail "python3 cannot import torch"
import torch, torch.utils
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
print("cmake_prefix_path", torch.utils.cmake_prefix_path)
print("torch._C._GLIBCXX_USE_CXX11_ABI", torch._C._GLIBCXX_USE_CXX11_ABI)
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0))
EOF
  local prefix torch_dir abi gpu require=""
  prefix="$(python3 -c 'import torch.utils;print(torch.utils.cmake_prefix_path)')" || fail "no torch cmake prefix"
  torch_dir="$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')"
  abi="$(python3 -c 'import torch;print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
  echo "TorchConfig.cmake says:"
  grep -n "_GLIBCXX_USE_CXX11_ABI" "$prefix/Torch/TorchConfig.cmake" || echo "  (no _GLIBCXX_USE_CXX11_ABI line)"
  [ "$abi" = "1" ] || fail "this torch uses the old C++ ABI (_GLIBCXX_USE_CXX11_ABI=$abi); Debian's abseil needs 1"
  gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
  if python3 -c 'import sys,torch;sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    require="--require_cuda=1"  # Python torch sees the GPU: so must the C++ program
  fi

  step "abseil (.gpu/absl)"
  [ -f "$ABSL/lib/x86_64-linux-gnu/cmake/absl/abslConfig.cmake" ] ||
    fail "$ABSL is missing: copy Debian's abseil there and call run with carry [\".gpu\"]"
  # The .so links, in case they did not travel as links.
  local f base
  for f in "$ABSL"/lib/x86_64-linux-gnu/libabsl_*.so.*.*.*; do
    base="${f%.*.*}"                     # libabsl_x.so.20220623
    [ -e "$base" ] || ln -sf "$(basename "$f")" "$base"
    [ -e "${base%.*}" ] || ln -sf "$(basename "$base")" "${base%.*}"
  done
  ls "$ABSL"/lib/x86_64-linux-gnu/libabsl_*.so | wc -l
  du -sh "$ABSL"

  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"  # no GPU probe at configure time
  export CMAKE_POLICY_VERSION_MINIMUM=3.5
  local build="$BUILD_DIR"
  step "configure: find_package(Torch) from $prefix"
  if ! cmake -S "$REPO/tools/gpu_check" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
       -DCMAKE_PREFIX_PATH="$prefix" -DDGSR_ABSL_ROOT="$ABSL"; then
    echo "run_on_device: configuring with find_package(Torch) FAILED; CMake logs in \$OUT; trying libtorch by hand" >&2
    cp "$build/CMakeFiles/CMakeError.log" "$OUT/cmake_error.log" 2>/dev/null
    cp "$build/CMakeFiles/CMakeConfigureLog.yaml" "$OUT/cmake_configure_log.yaml" 2>/dev/null
    build="$BUILD_DIR-manual"
    step "configure: libtorch by hand from $torch_dir"
    cmake -S "$REPO/tools/gpu_check" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DDGSR_TORCH_MANUAL=ON -DDGSR_TORCH_ROOT="$torch_dir" -DDGSR_TORCH_CXX11_ABI="$abi" \
      -DDGSR_ABSL_ROOT="$ABSL" || fail "configuring failed both ways (see the CMake output above)"
  fi
  echo "configured in $((SECONDS - t_start)) s"

  step "build (-j$(nproc))"
  local t_build=$SECONDS
  cmake --build "$build" -j "$(nproc)" -- -k 0 || fail "the build failed (compiler errors above)"
  echo "built in $((SECONDS - t_build)) s"
  ldd "$build/serving_check" | grep -E "absl_status\.|libtorch|libc10|cudart|not found" || true

  step "run: serving_check $ARGS $require --gpu_name=\"$gpu\""
  local t_run=$SECONDS
  # shellcheck disable=SC2086
  "$build/serving_check" $ARGS $require --gpu_name="$gpu" 2>&1 | tee "$OUT/serving_check.txt"
  local rc=${PIPESTATUS[0]}
  echo "ran in $((SECONDS - t_run)) s, exit $rc"
  if [ "$rc" != 0 ]; then
    echo "run_on_device: serving_check FAILED (exit $rc); measuring the CPU alone" >&2
    "$build/serving_check" --device=cpu --reps=60 --warmup=10 --max_seconds=4 2>&1 | tee "$OUT/serving_check_cpu_only.txt"
    tail -n 1 "$OUT/serving_check_cpu_only.txt" > "$OUT/serving_check.json"
    fail "serving_check failed with --device=all (exit $rc)"
  fi
  tail -n 1 "$OUT/serving_check.txt" > "$OUT/serving_check.json"
  echo "total $((SECONDS - t_start)) s"
}

main 2>&1 | tee "$OUT/run.log"
exit "${PIPESTATUS[0]}"
