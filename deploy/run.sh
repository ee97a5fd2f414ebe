#!/usr/bin/env bash
# make run: the whole stack natively, for machines without Docker. Builds the
# UI and the binaries, starts the dev stack (a private redis-server and
# FerretDB, data under var/run/), then the shop, scorer, gateway and
# dashboard. Ctrl-C stops everything it started. Redis keeps its data in an
# append-only file under var/run/data/redis/, as docker-compose.yml does:
# bans, login locks and keys survive a restart.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
GATEWAY_ADDR=${GATEWAY_ADDR:-127.0.0.1:8080}
SCORER_ADDR=${SCORER_ADDR:-127.0.0.1:8081}
DASHBOARD_ADDR=${DASHBOARD_ADDR:-127.0.0.1:8082}
SHOP_ADDR=${SHOP_ADDR:-127.0.0.1:9000}

command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install redis-server" >&2; exit 1; }
mkdir -p var/run var/geoip bin
echo "building the UI and the binaries..."
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >var/run/build.log 2>&1 || { cat var/run/build.log; exit 1; }
go build -o bin/ ./gateway/cmd/gateway ./scorer/cmd/scorer ./dashboard/cmd/dashboard ./deploy/cmd/shop ./deploy/cmd/geoipgen
go build -o bin/devstack ./deploy/devstack
bin/geoipgen -out var/geoip/demo-city.mmdb -asn-out var/geoip/demo-asn.mmdb

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit 0
}
trap cleanup INT TERM

envfile=var/run/stack.env
rm -f "$envfile"
bin/devstack -dir var/run/data -env-file "$envfile" >var/run/devstack.log 2>&1 & pids+=($!)
for _ in $(seq 600); do [ -s "$envfile" ] && break; sleep 0.2; done
[ -s "$envfile" ] || { cat var/run/devstack.log; echo "dev stack did not start" >&2; exit 1; }
. "$envfile"
export BULWARK_REDIS_URL=$BULWARK_TEST_REDIS_URL BULWARK_MONGO_URI=$BULWARK_TEST_MONGO_URI

BULWARK_LISTEN=$SHOP_ADDR bin/shop >var/run/shop.log 2>&1 & pids+=($!)
BULWARK_LISTEN=$SCORER_ADDR BULWARK_GEOIP_DB=$root/var/geoip/demo-city.mmdb BULWARK_GEOIP_ASN_DB=$root/var/geoip/demo-asn.mmdb \
  bin/scorer >var/run/scorer.log 2>&1 & pids+=($!)
BULWARK_LISTEN=$GATEWAY_ADDR BULWARK_UPSTREAM_URL=http://$SHOP_ADDR BULWARK_SCORER_URL=http://$SCORER_ADDR \
  bin/gateway >var/run/gateway.log 2>&1 & pids+=($!)
BULWARK_LISTEN=$DASHBOARD_ADDR bin/dashboard >var/run/dashboard.log 2>&1 & pids+=($!)

for addr in $SHOP_ADDR $SCORER_ADDR $GATEWAY_ADDR $DASHBOARD_ADDR; do
  for _ in $(seq 100); do curl -fs "http://$addr/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs "http://$addr/healthz" >/dev/null || { tail -n 20 var/run/*.log; echo "a service at $addr did not come up" >&2; exit 1; }
done
cat <<MSG

Bulwark is running (logs in var/run/):
  gateway    http://$GATEWAY_ADDR      (in front of the demo shop)
  dashboard  http://$DASHBOARD_ADDR
  scorer     http://$SCORER_ADDR
  shop       http://$SHOP_ADDR
  redis      $BULWARK_REDIS_URL
  mongodb    $BULWARK_MONGO_URI  (database bulwark, collection events)

Send an attack:  for i in \$(seq 100); do curl -s -o /dev/null -w '%{http_code} ' http://$GATEWAY_ADDR/api/products; done
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "a service exited; see var/run/*.log" >&2
cleanup
