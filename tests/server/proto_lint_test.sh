#!/usr/bin/env bash
# `buf lint` over proto/ (standard rules plus comments). Exit 77 (ctest: skipped) when buf is not
# installed; scripts/install_deps.sh installs it into /opt/dgsr-tools where npm is available.
set -uo pipefail
PROTO_DIR=${1:?usage: proto_lint_test.sh PROTO_DIR}
BUF=$(command -v buf || true)
[[ -z "$BUF" && -x /opt/dgsr-tools/node_modules/.bin/buf ]] && BUF=/opt/dgsr-tools/node_modules/.bin/buf
if [[ -z "$BUF" ]]; then
  echo "SKIPPED: buf not installed"
  exit 77
fi
cd "$PROTO_DIR" && "$BUF" lint && echo "buf lint: clean"
