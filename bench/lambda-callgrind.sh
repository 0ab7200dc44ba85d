#!/usr/bin/env bash
# Instructions per Lambda authorizer invocation (callgrind), the stable figure on a noisy
# machine: for each case of crates/lambda/benches/authorizer.rs (JWTGATE_BENCH_ONLY), callgrind
# counts, inside the bench's `invoke` (or `core_verify`) only, two runs of N1 and N2
# invocations; (count2 - count1) / (N2 - N1) is one warm invocation (the first, which fills the
# cache, cancels out). `core/verify` is the baseline: jwtgate-core's bare verify of the
# same token. Needs valgrind (apt-get install valgrind).
#
# Usage: bench/lambda-callgrind.sh [CASE...]     Environment: CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
BENCH=$(cargo bench -p jwtgate-lambda --bench authorizer --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
CASES=${*:-core/verify rest_token/cached rest_token/verify rest_request/cached rest_request/verify http_api_v2/cached http_api_v2/verify}
N1=100 N2=600
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
count() {
  JWTGATE_BENCH_ONLY=$1 JWTGATE_BENCH_ITERATIONS=$2 valgrind --tool=callgrind \
    --toggle-collect='authorizer::invoke' --toggle-collect='authorizer::core_verify' \
    --callgrind-out-file="$OUT/cg.out" "$BENCH" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "instructions per invocation (callgrind, ($N2 - $N1) invocations):"
for case in $CASES; do
  a=$(count "$case" $N1)
  b=$(count "$case" $N2)
  printf '  %-22s %9d\n' "$case" $(( (b - a) / (N2 - N1) ))
done
