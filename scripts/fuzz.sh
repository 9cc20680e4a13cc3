#!/usr/bin/env bash
# Runs every fuzz target of kanon for a while each (FUZZTIME, default 30s),
# with a short minimisation time: Go's fuzzer otherwise spends up to a
# minute minimising each new input and makes little progress on the
# readers. A failing input is written under the package's testdata/fuzz/
# (commit it: it then runs with go test ./... as a regression test).
#
#   scripts/fuzz.sh                      # every target, 30s each
#   FUZZTIME=5m scripts/fuzz.sh FuzzReader FuzzEachItem
set -euo pipefail
cd "$(dirname "$0")/.."
time=${FUZZTIME:-30s}
want=" $* "
status=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")
  [ $# -gt 0 ] && [[ "$want" != *" $name "* ]] && continue
  pkg=./$(dirname "$file")
  echo "== $name ($pkg, $time)"
  if ! go test -run XXX -fuzz "^${name}\$" -fuzztime "$time" -fuzzminimizetime 5s "$pkg"; then
    status=1
  fi
done < <(grep -rn --include='*_test.go' -h -H '^func Fuzz' . | sed 's#^\./##' | awk -F: '{print $1":"$3}')
exit $status
