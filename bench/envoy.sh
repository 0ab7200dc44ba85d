#!/usr/bin/env bash
# jwtgate beside Envoy's own JWT verifier (issue 12, item 5), on loopback, in one run, with the
# same RS256 key, JWKS and tokens (crates/core/examples/bench_tokens.rs) for every run:
#   (e)   Envoy answering directly (direct_response 200), no auth: Envoy's floor
#   (j)   Envoy jwt_authn, no JWT cache, answering directly
#   (jc)  Envoy jwt_authn with jwt_cache_config (10,000 entries), answering directly
#   (f)   `jwtgate serve` forward-auth alone (default verified-token cache)
#   (g)   Envoy -> jwtgate over gRPC ext_authz (default cache), Envoy answering directly, with
#         the ext_authz filter of docs/recipes/envoy-grpc.yaml (bench/lib/envoy.sh)
#   (gs)  the same with jwtgate on the other core (beside wrk), as when it runs in its own pod
#   (g0)  the same with the bare filter (without the recipe's cost settings), one token only:
#         what those settings save, in the same run
#   (h)   Envoy -> jwtgate over HTTP ext_authz (forward_auth_prefix), for comparison
# each with one repeated token (suffix 1) and with 10,000 distinct tokens rotated by
# bench/rotate_tokens.lua (suffix n). Servers run on core 0 (Envoy --concurrency 1, and jwtgate),
# wrk on core 1. Printed: req/s, p50, p99, and CPU microseconds per request from
# /proc/PID/stat (utime + stime) of every server process of the run, summed (for (g) also
# jwtgate's part alone), then the two goals:
#   1. a gRPC check costs jwtgate <= its forward-auth CPU per request + 3 us   (g's jwtgate vs f)
#   2. Envoy -> jwtgate over gRPC, both processes together, costs less per request than
#      Envoy's in-process jwt_authn without its cache                          (g vs j)
#
# Usage: bench/envoy.sh   (needs wrk, taskset, and Envoy 1.40 in target/proxies-venv: bash scripts/test
#   installs it). Environment: BENCH_DURATION (seconds per run, default 10), BENCH_CONNECTIONS
#   (default 32), BENCH_TOKENS (default 10000), CARGO_TARGET_DIR (where the release build goes).
# Only loopback addresses are used; every run is bounded by BENCH_DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
COUNT=${BENCH_TOKENS:-10000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ENVOY=$ROOT/target/proxies-venv/bin/envoy
SERVER_CPU=0
CLIENT_CPU=1

for tool in wrk taskset cargo; do
  command -v "$tool" >/dev/null || { echo "bench/envoy.sh: $tool is not installed" >&2; exit 2; }
done
[ -x "$ENVOY" ] || { echo "bench/envoy.sh: $ENVOY is missing: run bash scripts/test (its \"envoy and traefik\" stage)" >&2; exit 2; }
if [ "$(nproc --all)" -lt 2 ]; then
  echo "bench/envoy.sh: needs two cores (servers on one, wrk on the other)" >&2
  exit 2
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "==> building (release)"
cargo build --release --quiet -p jwtgate --bin jwtgate
cargo build --release --quiet -p jwtgate-core --example bench_tokens
JWTGATE=$TARGET/release/jwtgate
echo "==> $COUNT tokens and their JWKS"
taskset -c "$SERVER_CPU" "$TARGET/release/examples/bench_tokens" "$WORK" "$COUNT" >/dev/null
TOKEN=$(cat "$WORK/token.txt")
export JWTGATE_BENCH_TOKENS=$WORK/tokens.txt
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
NEXT_PORT=18300
# Sets the variable named $1 to a free port (each call a new one).
alloc_port() {
  local port
  for port in $(seq "$NEXT_PORT" 18400); do
    if port_free "$port"; then NEXT_PORT=$((port + 1)); printf -v "$1" '%s' "$port"; return; fi
  done
  echo "no free port in 18300-18400" >&2
  exit 2
}
http_status() { # port path [header]
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n%s\r\n' "$2" "${3:+$3$'\r\n'}" >&3
  local line
  read -r line <&3 || true
  exec 3>&-
  awk '{print $2}' <<<"$line"
}
http_get() { # port path
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET %s HTTP/1.0\r\nHost: bench\r\n\r\n' "$2" >&3
  cat <&3
  exec 3>&-
}
# Waits until GET path on port answers 200 with the bench token (20 s at most).
wait_ready() { # port path pid...
  local port=$1 path=$2
  shift 2
  for _ in $(seq 1 400); do
    for pid in "$@"; do
      kill -0 "$pid" 2>/dev/null || { echo "a server exited early; its log:" >&2; cat "$WORK"/*.log >&2; exit 1; }
    done
    if [ "$(http_status "$port" "$path" "Authorization: Bearer $TOKEN" 2>/dev/null)" = 200 ]; then return; fi
    sleep 0.05
  done
  echo "not ready on $port$path after 20 s" >&2
  cat "$WORK"/*.log >&2
  exit 1
}
cpu_ticks() { local sum=0 pid; for pid in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$sum"; }
TICKS=$(getconf CLK_TCK)

start() { # name command...
  local name=$1
  shift
  taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  LAST_PID=$!
}
stop() { local pid; for pid in "$@"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }

# shellcheck source=bench/lib/envoy.sh
source "$ROOT/bench/lib/envoy.sh"
start_envoy() { # name config
  printf '%s\n' "$2" >"$WORK/$1.yaml"
  start "$1" "$ENVOY" -c "$WORK/$1.yaml" --concurrency 1 --disable-hot-restart --log-level error
}

declare -A RPS P50 P99 CPU CPU_JWTGATE EXTRA
run() { # name url "pids" wrk-args...
  local name=$1 url=$2 pids=$3
  shift 3
  # Warm-up, not counted: long enough for the slowest run to send every rotated token once, so
  # every run measures the same steady state (each cache, when on, holding the whole set).
  local warmup=2
  case " $* " in *rotate_tokens*) warmup=$(( COUNT / 1000 + 2 )) ;; esac
  # shellcheck disable=SC2086
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${warmup}s" "$@" "$url" >/dev/null
  local before after before_j after_j out requests
  before=$(cpu_ticks $pids)
  before_j=${JWTGATE_PID:+$(cpu_ticks "$JWTGATE_PID")}
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
  after=$(cpu_ticks $pids)
  after_j=${JWTGATE_PID:+$(cpu_ticks "$JWTGATE_PID")}
  if grep -q "Non-2xx" <<<"$out" || grep -q "Socket errors" <<<"$out"; then
    echo "$out" >&2
    echo "run $name: errors or non-2xx answers: the benchmark is not valid" >&2
    exit 1
  fi
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  RPS[$name]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  P50[$name]=$(awk '$1 == "50%" {print $2}' <<<"$out")
  P99[$name]=$(awk '$1 == "99%" {print $2}' <<<"$out")
  CPU[$name]=$(awk -v t=$((after - before)) -v hz="$TICKS" -v n="$requests" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
  if [ -n "${JWTGATE_PID:-}" ]; then
    CPU_JWTGATE[$name]=$(awk -v t=$((after_j - before_j)) -v hz="$TICKS" -v n="$requests" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
  fi
  echo "    $name: ${RPS[$name]} req/s, ${CPU[$name]} us CPU/request"
}
ROTATE=(-s "$ROOT/bench/rotate_tokens.lua")
ONE=(-H "Authorization: Bearer $TOKEN")
metrics_line() { # port
  http_get "$1" /metrics | awk '
    /^jwtgate_token_cache_hits_total / {hits = $2}
    /^jwtgate_token_cache_misses_total / {misses = $2}
    /^jwtgate_verify_duration_seconds_count / {verified = $2}
    END {printf "jwtgate cache hits %s, misses %s, signature checks %s", hits, misses, verified}'
}

echo "==> (e) Envoy alone, no auth"
alloc_port PORT
start_envoy e "$(envoy_config "$PORT" "" "")"
ENVOY_PID=$LAST_PID
wait_ready "$PORT" /api/users "$ENVOY_PID"
run e1 "http://127.0.0.1:$PORT/api/users" "$ENVOY_PID" "${ONE[@]}"
stop "$ENVOY_PID"

for cache in off on; do
  name=j; cache_yaml=""
  if [ "$cache" = on ]; then
    name=jc
    cache_yaml="                          jwt_cache_config: { jwt_cache_size: $COUNT }"
  fi
  echo "==> ($name) Envoy jwt_authn, JWT cache $cache"
  alloc_port PORT
  start_envoy "$name" "$(envoy_config "$PORT" "$(jwt_authn_filter "$cache_yaml")" "")"
  ENVOY_PID=$LAST_PID
  wait_ready "$PORT" /api/users "$ENVOY_PID"
  [ "$(http_status "$PORT" /api/users)" = 401 ] || { echo "Envoy jwt_authn lets a request without a token through" >&2; exit 1; }
  run "${name}1" "http://127.0.0.1:$PORT/api/users" "$ENVOY_PID" "${ONE[@]}"
  run "${name}n" "http://127.0.0.1:$PORT/api/users" "$ENVOY_PID" "${ROTATE[@]}"
  stop "$ENVOY_PID"
done

echo "==> (f) jwtgate forward-auth alone"
alloc_port HTTP_PORT; alloc_port GRPC_PORT
jwtgate_config "$HTTP_PORT" "$GRPC_PORT" >"$WORK/jwtgate.toml"
FORWARD=(-H "X-Forwarded-Method: GET" -H "X-Forwarded-Uri: /api/users")
for tokens in 1 n; do
  start jwtgate-f$tokens "$JWTGATE" serve --config "$WORK/jwtgate.toml"
  GATE_PID=$LAST_PID
  wait_ready "$HTTP_PORT" /readyz "$GATE_PID"
  if [ $tokens = 1 ]; then args=("${ONE[@]}"); else args=("${ROTATE[@]}"); fi
  run "f$tokens" "http://127.0.0.1:$HTTP_PORT/auth" "$GATE_PID" "${args[@]}" "${FORWARD[@]}"
  EXTRA[f$tokens]=$(metrics_line "$HTTP_PORT")
  stop "$GATE_PID"
done

echo "==> (g) Envoy -> jwtgate gRPC ext_authz"
alloc_port PORT
for tokens in 1 n; do
  start jwtgate-g$tokens "$JWTGATE" serve --config "$WORK/jwtgate.toml"
  GATE_PID=$LAST_PID
  wait_ready "$HTTP_PORT" /readyz "$GATE_PID"
  start_envoy "g$tokens" "$(envoy_config "$PORT" "$(ext_authz_grpc)" "$(jwtgate_cluster "$GRPC_PORT")")"
  ENVOY_PID=$LAST_PID
  wait_ready "$PORT" /api/users "$ENVOY_PID" "$GATE_PID"
  [ "$(http_status "$PORT" /api/users)" = 401 ] || { echo "Envoy -> jwtgate lets a request without a token through" >&2; exit 1; }
  if [ $tokens = 1 ]; then args=("${ONE[@]}"); else args=("${ROTATE[@]}"); fi
  JWTGATE_PID=$GATE_PID run "g$tokens" "http://127.0.0.1:$PORT/api/users" "$ENVOY_PID $GATE_PID" "${args[@]}"
  EXTRA[g$tokens]=$(metrics_line "$HTTP_PORT")
  stop "$ENVOY_PID" "$GATE_PID"
done

echo "==> (gs) Envoy -> jwtgate gRPC ext_authz, jwtgate on the other core (beside wrk), as deployed"
alloc_port PORT
for tokens in 1 n; do
  SERVER_CPU=$CLIENT_CPU start jwtgate-gs$tokens "$JWTGATE" serve --config "$WORK/jwtgate.toml"
  GATE_PID=$LAST_PID
  wait_ready "$HTTP_PORT" /readyz "$GATE_PID"
  start_envoy "gs$tokens" "$(envoy_config "$PORT" "$(ext_authz_grpc)" "$(jwtgate_cluster "$GRPC_PORT")")"
  ENVOY_PID=$LAST_PID
  wait_ready "$PORT" /api/users "$ENVOY_PID" "$GATE_PID"
  if [ $tokens = 1 ]; then args=("${ONE[@]}"); else args=("${ROTATE[@]}"); fi
  JWTGATE_PID=$GATE_PID run "gs$tokens" "http://127.0.0.1:$PORT/api/users" "$ENVOY_PID $GATE_PID" "${args[@]}"
  stop "$ENVOY_PID" "$GATE_PID"
done

echo "==> (g0) Envoy -> jwtgate gRPC ext_authz, the filter without the recipe's cost settings"
alloc_port PORT
start jwtgate-g0 "$JWTGATE" serve --config "$WORK/jwtgate.toml"
GATE_PID=$LAST_PID
wait_ready "$HTTP_PORT" /readyz "$GATE_PID"
start_envoy g0 "$(envoy_config "$PORT" "$(ext_authz_grpc bare)" "$(jwtgate_cluster "$GRPC_PORT")")"
ENVOY_PID=$LAST_PID
wait_ready "$PORT" /api/users "$ENVOY_PID" "$GATE_PID"
JWTGATE_PID=$GATE_PID run g0 "http://127.0.0.1:$PORT/api/users" "$ENVOY_PID $GATE_PID" "${ONE[@]}"
stop "$ENVOY_PID" "$GATE_PID"

echo "==> (h) Envoy -> jwtgate HTTP ext_authz"
alloc_port PORT
for tokens in 1 n; do
  start jwtgate-h$tokens "$JWTGATE" serve --config "$WORK/jwtgate.toml"
  GATE_PID=$LAST_PID
  wait_ready "$HTTP_PORT" /readyz "$GATE_PID"
  start_envoy "h$tokens" "$(envoy_config "$PORT" "$(ext_authz_http "$HTTP_PORT")" "$(jwtgate_http_cluster "$HTTP_PORT")")"
  ENVOY_PID=$LAST_PID
  wait_ready "$PORT" /api/users "$ENVOY_PID" "$GATE_PID"
  [ "$(http_status "$PORT" /api/users)" = 401 ] || { echo "Envoy -> jwtgate (HTTP) lets a request without a token through" >&2; exit 1; }
  if [ $tokens = 1 ]; then args=("${ONE[@]}"); else args=("${ROTATE[@]}"); fi
  JWTGATE_PID=$GATE_PID run "h$tokens" "http://127.0.0.1:$PORT/api/users" "$ENVOY_PID $GATE_PID" "${args[@]}"
  stop "$ENVOY_PID" "$GATE_PID"
done

echo
echo "load average before the runs: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every number)"
echo "$("$ENVOY" --version | grep -o 'version: [^ ]*' | head -1 | cut -d/ -f2 | sed 's/^/Envoy /') beside jwtgate: $(nproc --all) cores, servers on core $SERVER_CPU, wrk -t1 -c$CONNECTIONS -d${DURATION}s on core $CLIENT_CPU, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-4s %-52s %10s %9s %9s %14s %12s\n' run what req/s p50 p99 "cpu us/req" "of which jwtgate"
describe() {
  case $1 in
    e1) echo "Envoy direct_response, no auth" ;;
    j1) echo "Envoy jwt_authn, no cache, one token" ;;
    jn) echo "Envoy jwt_authn, no cache, $COUNT tokens" ;;
    jc1) echo "Envoy jwt_authn, jwt_cache_config, one token" ;;
    jcn) echo "Envoy jwt_authn, jwt_cache_config, $COUNT tokens" ;;
    f1) echo "jwtgate forward-auth alone, one token" ;;
    fn) echo "jwtgate forward-auth alone, $COUNT tokens" ;;
    g1) echo "Envoy -> jwtgate gRPC ext_authz, one token" ;;
    gn) echo "Envoy -> jwtgate gRPC ext_authz, $COUNT tokens" ;;
    gs1) echo "Envoy -> jwtgate gRPC, jwtgate on core $CLIENT_CPU, one token" ;;
    gsn) echo "Envoy -> jwtgate gRPC, jwtgate on core $CLIENT_CPU, $COUNT tokens" ;;
    g0) echo "Envoy -> jwtgate gRPC, bare filter, one token" ;;
    h1) echo "Envoy -> jwtgate HTTP ext_authz, one token" ;;
    hn) echo "Envoy -> jwtgate HTTP ext_authz, $COUNT tokens" ;;
  esac
}
for name in e1 j1 jn jc1 jcn f1 fn g1 gn gs1 gsn g0 h1 hn; do
  printf '%-4s %-52s %10s %9s %9s %14s %12s\n' "$name" "$(describe "$name")" "${RPS[$name]}" \
    "${P50[$name]}" "${P99[$name]}" "${CPU[$name]}" "${CPU_JWTGATE[$name]:-}"
done
for name in f1 fn g1 gn; do echo "  ($name) ${EXTRA[$name]}"; done
for tokens in 1 n; do
  awk -v what="$([ $tokens = 1 ] && echo "one token" || echo "$COUNT tokens")" \
      -v f="${CPU[f$tokens]}" -v gj="${CPU_JWTGATE[g$tokens]}" -v g="${CPU[g$tokens]}" \
      -v j="${CPU[j$tokens]}" -v jc="${CPU[jc$tokens]}" -v e="${CPU[e1]}" -v gs="${CPU[gs$tokens]}" '
    BEGIN {
      printf "%s: goal 1, jwtgate per gRPC check %.1f us <= forward-auth %.1f us + 3 = %.1f us: %s\n", what, gj, f, f + 3, (gj <= f + 3 ? "met" : "NOT met")
      printf "%s: goal 2, Envoy + jwtgate over gRPC %.1f us < Envoy jwt_authn without cache %.1f us: %s (%.2fx; jwt_authn with cache %.1f us; Envoy alone %.1f us)\n", what, g, j, (g < j ? "met" : "NOT met"), g / j, jc, e
      printf "%s: goal 2, the same with jwtgate on its own core %.1f us < %.1f us: %s (%.2fx)\n", what, gs, j, (gs < j ? "met" : "NOT met"), gs / j
    }'
done
