#!/usr/bin/env bash
# Installs dependencies, builds everything, and runs the whole test suite through ctest.
# Tests that need ../shared/data report SKIPPED (with the path) when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
./scripts/build.sh
cd build
ctest --output-on-failure -j"${DGSR_TEST_JOBS:-2}" --timeout 1500
