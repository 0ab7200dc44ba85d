# Envoy and jwtgate configurations shared by bench/envoy.sh and bench/grpc_callgrind.sh (sourced,
# not run): one definition of the benchmark's jwtgate, its Envoy listener and its ext_authz
# filters, so the two benchmarks measure the same setup. Every function prints YAML or TOML.
# The caller sets WORK (the directory holding jwks.json).

jwtgate_config() { # http_port grpc_port
  cat <<EOF
[server]
listen = "127.0.0.1:$1"
grpc_listen = "127.0.0.1:$2"
# The benchmark's Envoy reads no claims metadata (docs/envoy.md: it costs Envoy 8.5 % a check).
grpc_claims_metadata = false
forward_auth_prefix = "/ext-authz"
[[issuers]]
issuer = "https://example.eu.auth0.com/"
audiences = ["https://api.example.com"]
jwks_file = "${WORK:?}/jwks.json"
[[routes]]
methods = ["GET"]
path = "/api/users"
scopes = ["read:users"]
EOF
}

# Envoy with one listener answering 200 itself after the given HTTP filters; $3 adds clusters.
envoy_config() { # port filters-yaml clusters-yaml
  cat <<EOF
static_resources:
  listeners:
    - name: bench
      address:
        socket_address: { address: 127.0.0.1, port_value: $1 }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: bench
                normalize_path: true
                merge_slashes: true
                route_config:
                  virtual_hosts:
                    - name: bench
                      domains: ["*"]
                      routes:
                        - match: { prefix: "/" }
                          direct_response: { status: 200, body: { inline_string: "ok" } }
                http_filters:
$2
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
EOF
  if [ -n "$3" ]; then printf '  clusters:\n%s\n' "$3"; fi
}
jwt_authn_filter() { # cache-yaml
  cat <<EOF
                  - name: envoy.filters.http.jwt_authn
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
                      providers:
                        bench:
                          issuer: https://example.eu.auth0.com/
                          audiences: [https://api.example.com]
                          local_jwks: { filename: $WORK/jwks.json }
$1
                      rules:
                        - match: { prefix: "/" }
                          requires: { provider_name: bench }
EOF
}
# The ext_authz filter of docs/recipes/envoy-grpc.yaml (its cost settings: encode_raw_headers,
# disallowed_headers, skip_envoy_headers); with "bare", the filter without them, as the recipe
# was before they were measured (docs/envoy.md, "What each Envoy setting costs").
ext_authz_grpc() { # [bare]
  cat <<EOF
                  - name: envoy.filters.http.ext_authz
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
                      transport_api_version: V3
                      failure_mode_allow: false
EOF
  if [ "${1:-}" = bare ]; then
    cat <<EOF
                      grpc_service:
                        envoy_grpc: { cluster_name: jwtgate }
                        timeout: 0.5s
EOF
    return
  fi
  cat <<EOF
                      encode_raw_headers: true
                      disallowed_headers:
                        patterns:
                          - prefix: ":"
                          - exact: x-request-id
                          - exact: user-agent
                          - exact: referer
                          - exact: accept
                          - exact: accept-encoding
                          - exact: accept-language
                          - prefix: sec-fetch-
                          - prefix: sec-ch-ua
                      grpc_service:
                        envoy_grpc: { cluster_name: jwtgate, skip_envoy_headers: true }
                        timeout: 0.5s
EOF
}
ext_authz_http() { # jwtgate http port
  cat <<EOF
                  - name: envoy.filters.http.ext_authz
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
                      transport_api_version: V3
                      failure_mode_allow: false
                      http_service:
                        server_uri: { uri: "http://127.0.0.1:$1", cluster: jwtgate_http, timeout: 0.5s }
                        path_prefix: /ext-authz
                        authorization_response:
                          allowed_upstream_headers:
                            patterns: [{ exact: x-auth-subject }, { exact: x-auth-issuer }, { exact: x-auth-scopes }]
EOF
}
jwtgate_http_cluster() { # http port
  cat <<EOF
    - name: jwtgate_http
      type: STATIC
      connect_timeout: 0.25s
      load_assignment:
        cluster_name: jwtgate_http
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: { address: 127.0.0.1, port_value: $1 }
EOF
}
jwtgate_cluster() { # grpc port
  cat <<EOF
    - name: jwtgate
      type: STATIC
      connect_timeout: 0.25s
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
                    socket_address: { address: 127.0.0.1, port_value: $1 }
EOF
}
