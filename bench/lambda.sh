#!/usr/bin/env bash
# Measurements of the Lambda authorizer (issue 5), all on loopback:
#   size   the Lambda-only binary built with the `lambda` profile (fat LTO, one codegen unit,
#          opt-level "z" except AWS-LC, panic = "abort", stripped; workspace Cargo.toml; the
#          Lambda-only build has no HTTP/2: only the gateway's crates enable reqwest's `http2`)
#          (`cargo build --profile lambda -p jwtgate --no-default-features --features lambda`);
#          goal ≤ 8 MiB (issue 17)
#   cold   process start to the first answered invocation, against a small Lambda Runtime API
#          on loopback, with keys fetched during init from a JWKS on loopback (20 runs; the
#          ignored test `measure_cold_start_and_warm_invocations` in crates/cli/tests/lambda.rs,
#          run against this binary through JWTGATE_BIN); goal < 50 ms
#   warm   per-invocation handler time in a warm process, event bytes to answer bytes, for a
#          cached token and for a new token, beside jwtgate-core's bare verify of the same token
#          in the same run (crates/lambda/benches/authorizer.rs); goals (issue 17): cached ≤ 5 µs
#          for every event type, new token ≤ core verify + 10 µs; the events are the documented
#          ones made compact, as API Gateway sends them (JWTGATE_BENCH_INDENTED=1: as stored)
#   instr  the same cases' instructions per invocation under callgrind, the stable figure on a
#          noisy machine (bench/lambda-callgrind.sh; needs valgrind)
#
# Usage: bench/lambda.sh      Environment: CARGO_TARGET_DIR (where the builds go).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --profile lambda -p jwtgate --no-default-features --features lambda
BIN=$TARGET/lambda-only/bootstrap
mkdir -p "$(dirname "$BIN")"
cp "$TARGET/lambda/jwtgate" "$BIN"
SIZE=$(stat -c %s "$BIN")
echo "size: release stripped Lambda-only binary: $SIZE bytes ($(awk "BEGIN {printf \"%.2f\", $SIZE / 1048576}") MiB)"

JWTGATE_BIN=$BIN cargo test -p jwtgate --test lambda measure_cold_start_and_warm_invocations \
  -- --ignored --nocapture 2>&1 | grep -E '^(cold|warm)'

cargo bench -p jwtgate-lambda --bench authorizer

bash bench/lambda-callgrind.sh
