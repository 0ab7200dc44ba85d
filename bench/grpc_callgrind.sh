#!/usr/bin/env bash
# Instructions per check of jwtgate's gRPC ext_authz against its forward-auth, counted by
# callgrind (stable where CPU times are not: the machine is shared). jwtgate runs under
# `valgrind --tool=callgrind`; after a 3 s warm-up the counters are zeroed, wrk sends checks for
# SECONDS (through Envoy 1.40's gRPC ext_authz for `grpc`, straight to /auth for `fwd`), the
# counters are dumped and divided by the decisions jwtgate counted (jwtgate_requests_total).
# One repeated token (a verified-token cache hit). The callgrind file is kept in WORK for
# `callgrind_annotate --inclusive=yes`.
#
# Usage: bench/grpc_callgrind.sh grpc|fwd [SECONDS]   (needs valgrind, wrk, curl, and Envoy in
#   target/proxies-venv: bash scripts/test installs it). Loopback ports 18511-18513.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:?grpc or fwd}
SECS=${2:-10}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ENVOY=$ROOT/target/proxies-venv/bin/envoy
for tool in valgrind callgrind_control callgrind_annotate wrk curl cargo; do
  command -v "$tool" >/dev/null || { echo "bench/grpc_callgrind.sh: $tool is not installed" >&2; exit 2; }
done
cargo build --release --quiet -p jwtgate --bin jwtgate
cargo build --release --quiet -p jwtgate-core --example bench_tokens
T=$TARGET/release
W=$(mktemp -d)
"$T/examples/bench_tokens" "$W" 10 >/dev/null
TOKEN=$(cat $W/token.txt)
cat >$W/j.toml <<T2
[server]
listen = "127.0.0.1:18511"
grpc_listen = "127.0.0.1:18512"
[[issuers]]
issuer = "https://example.eu.auth0.com/"
audiences = ["https://api.example.com"]
jwks_file = "$W/jwks.json"
[[routes]]
methods = ["GET"]
path = "/api/users"
scopes = ["read:users"]
T2
cat >$W/e.yaml <<Y
static_resources:
  listeners:
    - name: bench
      address:
        socket_address: { address: 127.0.0.1, port_value: 18513 }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: bench
                route_config:
                  virtual_hosts:
                    - name: bench
                      domains: ["*"]
                      routes:
                        - match: { prefix: "/" }
                          direct_response: { status: 200, body: { inline_string: "ok" } }
                http_filters:
                  - name: envoy.filters.http.ext_authz
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
                      transport_api_version: V3
                      failure_mode_allow: false
                      grpc_service:
                        envoy_grpc: { cluster_name: jwtgate }
                        timeout: 5s
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: jwtgate
      type: STATIC
      connect_timeout: 1s
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options: {}
      load_assignment:
        cluster_name: jwtgate
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: { address: 127.0.0.1, port_value: 18512 }
Y
valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out.%p" $T/jwtgate serve --config $W/j.toml >$W/j.log 2>&1 &
VG=$!
EP=
cleanup() { if [ -n "$EP" ]; then kill "$EP" 2>/dev/null || true; fi; kill "$VG" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
for i in $(seq 200); do curl -sf http://127.0.0.1:18511/readyz >/dev/null && break; sleep 0.2; done
count() { curl -s http://127.0.0.1:18511/metrics | awk '/^jwtgate_requests_total/ {s+=$2} END {print s+0}'; }
if [ "$MODE" = grpc ]; then
  $ENVOY -c $W/e.yaml --concurrency 1 --disable-hot-restart --log-level error >$W/e.log 2>&1 &
  EP=$!
  for i in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18513/api/users)" = 200 ] && break; sleep 0.2; done
  URL=http://127.0.0.1:18513/api/users; EXTRA=()
else
  URL=http://127.0.0.1:18511/auth; EXTRA=(-H "X-Forwarded-Method: GET" -H "X-Forwarded-Uri: /api/users")
fi
wrk -t1 -c8 -d3s -H "Authorization: Bearer $TOKEN" "${EXTRA[@]}" $URL >/dev/null
callgrind_control -z $VG >/dev/null
B=$(count)
wrk -t1 -c8 -d${SECS}s -H "Authorization: Bearer $TOKEN" "${EXTRA[@]}" $URL > $W/wrk.$MODE
A=$(count)
callgrind_control -d $VG >/dev/null
sleep 1
F=$(ls -t "$W"/callgrind.out.* | head -1)
IR=$(callgrind_annotate $F 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
N=$((A - B))
echo "$MODE: $N checks, $IR instructions, $((IR / N)) per check (callgrind file: $F)"
grep -E "Non-2xx|Socket" $W/wrk.$MODE || true
