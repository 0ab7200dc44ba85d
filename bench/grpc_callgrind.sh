#!/usr/bin/env bash
# Instructions per check of jwtgate's gRPC ext_authz against its forward-auth, counted by
# callgrind (stable where CPU times are not: the machine is shared). jwtgate runs under
# `valgrind --tool=callgrind`; after a 3 s warm-up the counters are zeroed, wrk sends checks for
# SECONDS (through Envoy 1.40's gRPC ext_authz for `grpc`, straight to /auth for `fwd`), the
# counters are dumped and divided by the decisions jwtgate counted (jwtgate_requests_total).
# One repeated token (a verified-token cache hit), or with BENCH_TOKENS=N, N distinct tokens
# rotated by bench/rotate_tokens.lua (all cached after the warm-up, which then sends each token
# once). jwtgate's and Envoy's configurations are
# bench/envoy.sh's (bench/lib/envoy.sh): Envoy's ext_authz filter is docs/recipes/envoy-grpc.yaml's,
# or with BENCH_FILTER=bare the filter without the recipe's cost settings. The callgrind file is
# kept in its directory (printed) for `callgrind_annotate --inclusive=yes`.
#
# Usage: [BENCH_TOKENS=N] [BENCH_FILTER=bare] bench/grpc_callgrind.sh grpc|fwd [SECONDS]   (needs valgrind, wrk, curl, and Envoy in
#   target/proxies-venv: bash scripts/test installs it). Loopback ports 18511-18513.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:?usage: bench/grpc_callgrind.sh grpc|fwd [SECONDS]}
SECS=${2:-10}
case $MODE in grpc|fwd) ;; *) echo "bench/grpc_callgrind.sh: mode is grpc or fwd, not $MODE" >&2; exit 2 ;; esac
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ENVOY=$ROOT/target/proxies-venv/bin/envoy
for tool in valgrind callgrind_control callgrind_annotate wrk curl cargo; do
  command -v "$tool" >/dev/null || { echo "bench/grpc_callgrind.sh: $tool is not installed" >&2; exit 2; }
done
[ "$MODE" = fwd ] || [ -x "$ENVOY" ] || { echo "bench/grpc_callgrind.sh: $ENVOY is missing: run bash scripts/test (its \"envoy and traefik\" stage)" >&2; exit 2; }
# shellcheck source=bench/lib/envoy.sh
source "$ROOT/bench/lib/envoy.sh"
HTTP_PORT=18511 GRPC_PORT=18512 ENVOY_PORT=18513

cargo build --release --quiet -p jwtgate --bin jwtgate
cargo build --release --quiet -p jwtgate-core --example bench_tokens
T=$TARGET/release
WORK=$(mktemp -d)
COUNT=${BENCH_TOKENS:-1}
"$T/examples/bench_tokens" "$WORK" "$((COUNT > 10 ? COUNT : 10))" >/dev/null
TOKEN=$(cat "$WORK/token.txt")
TOKENS=(-H "Authorization: Bearer $TOKEN")
WARMUP=3
if [ "$COUNT" -gt 1 ]; then
  head -n "$COUNT" "$WORK/tokens.txt" >"$WORK/rotated.txt"
  export JWTGATE_BENCH_TOKENS=$WORK/rotated.txt
  TOKENS=(-s "$ROOT/bench/rotate_tokens.lua")
  # Under valgrind a signature check takes milliseconds: time for every token once.
  WARMUP=$((COUNT / 200 + 5))
fi
jwtgate_config "$HTTP_PORT" "$GRPC_PORT" >"$WORK/jwtgate.toml"
envoy_config "$ENVOY_PORT" "$(ext_authz_grpc "${BENCH_FILTER:-}")" "$(jwtgate_cluster "$GRPC_PORT")" >"$WORK/envoy.yaml"

valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" "$T/jwtgate" serve --config "$WORK/jwtgate.toml" >"$WORK/jwtgate.log" 2>&1 &
VG=$!
EP=
cleanup() { if [ -n "$EP" ]; then kill "$EP" 2>/dev/null || true; fi; kill "$VG" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
fail() { echo "bench/grpc_callgrind.sh: $1; logs in $WORK" >&2; exit 1; }
ready=
for _ in $(seq 300); do
  kill -0 "$VG" 2>/dev/null || fail "jwtgate exited"
  if curl -sf "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || fail "jwtgate not ready after 60 s"
count() { curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^jwtgate_requests_total/ {s+=$2} END {print s+0}'; }
if [ "$MODE" = grpc ]; then
  "$ENVOY" -c "$WORK/envoy.yaml" --concurrency 1 --disable-hot-restart --log-level error >"$WORK/envoy.log" 2>&1 &
  EP=$!
  ready=
  for _ in $(seq 150); do
    kill -0 "$EP" 2>/dev/null || fail "Envoy exited"
    if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ENVOY_PORT/api/users")" = 200 ]; then ready=1; break; fi
    sleep 0.2
  done
  [ -n "$ready" ] || fail "Envoy -> jwtgate never answered 200 with the bench token"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ENVOY_PORT/api/users")" = 401 ] || fail "Envoy -> jwtgate lets a request without a token through"
  URL=http://127.0.0.1:$ENVOY_PORT/api/users; EXTRA=()
else
  URL=http://127.0.0.1:$HTTP_PORT/auth; EXTRA=(-H "X-Forwarded-Method: GET" -H "X-Forwarded-Uri: /api/users")
fi
wrk -t1 -c8 -d"${WARMUP}s" "${TOKENS[@]}" "${EXTRA[@]}" "$URL" >/dev/null
callgrind_control -z "$VG" >/dev/null || fail "callgrind_control -z failed"
B=$(count)
wrk -t1 -c8 -d"${SECS}s" "${TOKENS[@]}" "${EXTRA[@]}" "$URL" >"$WORK/wrk.$MODE"
A=$(count)
callgrind_control -d "$VG" >/dev/null || fail "callgrind_control -d failed"
sleep 1
if grep -qE "Non-2xx|Socket errors" "$WORK/wrk.$MODE"; then
  cat "$WORK/wrk.$MODE" >&2
  fail "errors or non-2xx answers: the count is not valid"
fi
F=$(ls -t "$WORK"/callgrind.out.* | head -1)
IR=$(callgrind_annotate "$F" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
N=$((A - B))
[ -n "$IR" ] && [ "$N" -gt 0 ] || fail "no instructions ($IR) or no checks ($N) counted"
MISSES=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^jwtgate_token_cache_misses_total / {print $2}')
echo "$MODE ($COUNT tokens): $N checks, $IR instructions, $((IR / N)) per check, token cache misses since start $MISSES (callgrind file: $F)"
