# Shared by the shell tests (tests/cli/cli_test.sh, tests/server/serve_cli_test.sh): source it.
#   ok MESSAGE                       prints "ok: MESSAGE"
#   fail MESSAGE                     prints "FAIL: MESSAGE" and counts it in $failures
#   expect_error NAME PATTERN CMD... CMD must exit non-zero and print PATTERN (grep -E)
failures=0

ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

expect_error() {
  local name=$1 pattern=$2
  shift 2
  local out
  if out=$("$@" 2>&1); then
    fail "$name: exit status 0, expected an error; output: $out"
  elif ! grep -Eq "$pattern" <<<"$out"; then
    fail "$name: error does not say /$pattern/; output: $out"
  else
    ok "$name -> $(grep -E "$pattern" <<<"$out" | head -1)"
  fi
}
