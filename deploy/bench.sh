#!/usr/bin/env bash
# make bench: the performance claims, measured.
#
# 1. Go benchmarks (skip with BENCH_GO=0): the scorer's rules and HTTP
#    handler, and the gateway's chain against plain proxying in the same run
#    (x-baseline is the ratio), the dashboard's ban listing with and
#    without 100,000 tracked clients, on the dev stack's private Redis.
# 2. The load harness (skip with BENCH_LOAD=0; deploy/cmd/loadbench): one
#    upstream (50 bytes of JSON) reached directly, through a bare Go
#    httputil.ReverseProxy, through nginx (proxy_pass, limit_req, upstream
#    keepalive, one worker) and through Bulwark (gateway with its defaults:
#    scorer on, enforcing; scorer with the default profile and the demo
#    GeoIP databases; the dev stack's Redis and FerretDB). Each target gets
#    the same loads from the same generators: wrk, closed loop, for the
#    maximum; vegeta, open loop at a fixed rate, for latency. The main
#    legitimate load is the API mix (browsers, Android and iOS apps, server
#    SDKs from cloud networks, curl: deploy/cmd/loadbench/apimix.go), the
#    second the browsers alone. Each Bulwark run is split by client class:
#    refusals from the gateway's log, scorer calls from a recorder between
#    gateway and scorer (`loadbench recorder`, a TCP relay counting each
#    score request's ip). The table is printed at the end; everything is in
#    var/bench/results.json. Exits non-zero when Bulwark refused a
#    legitimate request (the report's last line says FAIL).
#
# BENCH_DURATION (default 8s) is the length of each run; BENCH_API_CLIENTS
# (50000) and BENCH_API_SEED (1) make the API mix; BENCH_RECORD=0 points the
# gateway straight at the scorer (no scorer calls by class). Installs wrk,
# nginx and redis-server from Debian when they are missing and we are root.
# Every server is started here on a free port and stopped on exit; nothing
# else is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=var/bench
BENCH_GO=${BENCH_GO:-1}
BENCH_LOAD=${BENCH_LOAD:-1}
BENCH_RECORD=${BENCH_RECORD:-1}
export BENCH_DURATION=${BENCH_DURATION:-8s}

# need CMD PACKAGE...: install the first package that installs CMD.
need() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    for pkg in "$@"; do
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1 && command -v "$cmd" >/dev/null && return
    done
  fi
  echo "$cmd is missing: install Debian's $1 package" >&2
  exit 1
}
export PATH=$PATH:/usr/sbin
need redis-server redis-server
if [ "$BENCH_LOAD" != 0 ]; then
  need wrk wrk
  need nginx nginx-light nginx
fi

mkdir -p $out/bin
go build -o $out/bin/ ./deploy/cmd/loadbench
$out/bin/loadbench machine -wrk "$(command -v wrk || true)"
echo "$(go version); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

. deploy/devstack.sh
start_devstack "$root/$out"

if [ "$BENCH_GO" != 0 ]; then
  echo; echo "== Go benchmarks"
  (cd scorer && go test -run '^$' -bench . -benchmem ./rules/ ./internal/server/)
  (cd gateway && go test -run '^$' -bench . -benchmem ./internal/server/ ./internal/lists/ ./internal/realip/ ./internal/events/ ./internal/connlimit/)
  # The traffic store alone: Redis CPU, round trips and memory per client
  # (150,000 requests from 50,000 clients, 32 at a time), on one node and
  # on a private 3-master 3-replica Redis Cluster (CPU and memory summed
  # over the masters; round trips are per master).
  (cd gateway && go test -run '^$' -bench '^BenchmarkObserve(Cluster)?$' -benchtime 150000x ./internal/traffic/)
  # What Redis's append-only file grows by per request (a private
  # redis-server run as docker-compose.yml runs it), the in-memory fallback
  # (its checks on every request, a request counted while Redis is down),
  # and the circuit breaker's hook on every Redis call.
  (cd gateway && go test -run '^$' -bench ObserveAOF -benchtime 20000x ./internal/traffic/)
  (cd gateway && go test -run '^$' -bench 'Memory|ProcessHook' ./internal/traffic/ ./internal/redisbreaker/)
  (cd dashboard && go test -run '^$' -bench . -benchmem ./internal/traffic/)
fi
[ "$BENCH_LOAD" != 0 ] || exit 0

echo; echo "== load: building and starting the targets"
# Names of their own (the kernel's 15-character comm is "bulwark-bench-g"),
# so that someone's `pkill gateway` or `pkill -f bin/scorer` for another
# stack on the same machine leaves this one alone.
gateway=$out/bin/bulwark-bench-gateway scorer=$out/bin/bulwark-bench-scorer
go build -o $gateway ./gateway/cmd/gateway
go build -o $scorer ./scorer/cmd/scorer
go run ./deploy/cmd/geoipgen -out $out/demo-city.mmdb -asn-out $out/demo-asn.mmdb >/dev/null
logs=$out/logs
rm -rf "$logs"; mkdir -p "$logs"
ports=($($out/bin/loadbench ports -n 8))
up_port=${ports[0]} proxy_port=${ports[1]} nginx_port=${ports[2]} gw_port=${ports[3]} admin_port=${ports[4]} scorer_port=${ports[5]}
rec_port=${ports[6]} rec_control_port=${ports[7]}

pids=()
cleanup() {
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  kill -INT "$devstack_pid" 2>/dev/null || true
  wait "$devstack_pid" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

$out/bin/loadbench upstream -listen 127.0.0.1:$up_port >$logs/upstream.log 2>&1 & pids+=($!); up_pid=$!
$out/bin/loadbench proxy -listen 127.0.0.1:$proxy_port -upstream http://127.0.0.1:$up_port >$logs/proxy.log 2>&1 & pids+=($!); proxy_pid=$!

# nginx: one worker, upstream keepalive, a per-client limit_req generous
# enough for every legitimate client (keyed like Bulwark: the address the
# trusted proxy names), everything under a temporary prefix.
rm -rf "$root/$out"/nginx.*
ngx=$(mktemp -d "$root/$out/nginx.XXXXXX")
cat >"$ngx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $ngx/access.log;
  client_body_temp_path $ngx/body;
  proxy_temp_path $ngx/proxy;
  fastcgi_temp_path $ngx/fastcgi;
  uwsgi_temp_path $ngx/uwsgi;
  scgi_temp_path $ngx/scgi;
  limit_req_zone \$http_x_forwarded_for zone=perclient:20m rate=100r/s;
  upstream app {
    server 127.0.0.1:$up_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      limit_req zone=perclient burst=200 nodelay;
      limit_req_status 429;
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
nginx -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" >$logs/nginx.log 2>&1 & pids+=($!); nginx_pid=$!

BULWARK_LISTEN=127.0.0.1:$scorer_port BULWARK_GEOIP_DB=$root/$out/demo-city.mmdb BULWARK_GEOIP_ASN_DB=$root/$out/demo-asn.mmdb \
  BULWARK_CONFIG= BULWARK_PROFILE=default $scorer >$logs/scorer.log 2>&1 & pids+=($!); scorer_pid=$!
# The recorder: the gateway calls the scorer through it, so that the bench
# can count the calls by client class (it relays bytes; see loadbench).
scorer_url=http://127.0.0.1:$scorer_port record_args=()
if [ "$BENCH_RECORD" != 0 ]; then
  $out/bin/loadbench recorder -listen 127.0.0.1:$rec_port -scorer $scorer_url -control 127.0.0.1:$rec_control_port \
    >$logs/recorder.log 2>&1 & pids+=($!); rec_pid=$!
  scorer_url=http://127.0.0.1:$rec_port
  record_args=(-recorder http://127.0.0.1:$rec_control_port/calls -pid recorder=$rec_pid)
fi
# The gateway with its defaults (no config file): every protection on,
# enforcing, default log level. It trusts the generators' address as a proxy,
# so each simulated client is the one named in X-Forwarded-For.
admin_token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
BULWARK_CONFIG= BULWARK_LISTEN=127.0.0.1:$gw_port BULWARK_UPSTREAM_URL=http://127.0.0.1:$up_port \
  BULWARK_SCORER_URL=$scorer_url \
  BULWARK_REDIS_URL=$BULWARK_TEST_REDIS_URL BULWARK_MONGO_URI=$BULWARK_TEST_MONGO_URI \
  BULWARK_TRUSTED_PROXIES=127.0.0.1/32 \
  BULWARK_ADMIN_LISTEN=127.0.0.1:$admin_port BULWARK_ADMIN_TOKEN=$admin_token \
  $gateway >$logs/gateway.log 2>&1 & pids+=($!); gw_pid=$!

for url in http://127.0.0.1:$up_port/ http://127.0.0.1:$proxy_port/ http://127.0.0.1:$nginx_port/ \
  http://127.0.0.1:$scorer_port/healthz $scorer_url/healthz http://127.0.0.1:$gw_port/healthz; do
  for _ in $(seq 100); do curl -fs -o /dev/null "$url" && break; sleep 0.1; done
  curl -fs -o /dev/null "$url" || { tail -n 20 $logs/*.log "$ngx/error.log"; echo "$url did not come up" >&2; exit 1; }
done
[ "$BENCH_RECORD" = 0 ] || curl -fs -o /dev/null http://127.0.0.1:$rec_control_port/calls \
  || { tail -n 20 $logs/recorder.log; echo "the scorer recorder's /calls did not answer" >&2; exit 1; }
curl -fs -o /dev/null -H "Authorization: Bearer $admin_token" http://127.0.0.1:$admin_port/metrics \
  || { tail -n 20 $logs/gateway.log; echo "the gateway's admin /metrics did not answer" >&2; exit 1; }
echo "upstream :$up_port  bare proxy :$proxy_port  nginx :$nginx_port  gateway :$gw_port (admin :$admin_port)  scorer :$scorer_port (the gateway calls $scorer_url)"
echo "logs in $logs/ and $ngx/"

echo; echo "== load (${BENCH_DURATION} per run)"
BENCH_ADMIN_TOKEN=$admin_token $out/bin/loadbench run -dir $out \
  -direct http://127.0.0.1:$up_port -bare http://127.0.0.1:$proxy_port \
  -nginx http://127.0.0.1:$nginx_port -bulwark http://127.0.0.1:$gw_port \
  -redis "$BULWARK_TEST_REDIS_URL" -mongo "$BULWARK_TEST_MONGO_URI" \
  -scorer-metrics http://127.0.0.1:$scorer_port/metrics -gateway-metrics http://127.0.0.1:$admin_port/metrics \
  -scorer http://127.0.0.1:$scorer_port -gateway-log $logs/gateway.log "${record_args[@]}" \
  -pid upstream=$up_pid -pid proxy=$proxy_pid -pid nginx=$nginx_pid \
  -pid gateway=$gw_pid -pid scorer=$scorer_pid -pid devstack=$devstack_pid
