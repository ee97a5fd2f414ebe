#!/usr/bin/env bash
# make detect: measures detection quality. Builds the services and the
# traffic simulator, starts a private dev stack (redis-server + FerretDB),
# the demo shop, the scorer (demo GeoIP City + ASN databases, default
# profile, crawlers verified by DNS against the simulator's -dns-listen) and
# the gateway (trusting the simulator's address; configured by
# deploy/config/detect.yaml, or GATEWAY_CONFIG: a file, or empty for the
# defaults and the environment alone), runs every
# scenario for DURATION (default 60s) and prints the table; the JSON report
# goes to var/detect/report.json. Exits non-zero when a goal is missed.
# Everything it started is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
DURATION=${DURATION:-60s}
SEED=${SEED:-1}
SHOP_ADDR=${SHOP_ADDR:-127.0.0.1:19100}
SCORER_ADDR=${SCORER_ADDR:-127.0.0.1:19101}
GATEWAY_ADDR=${GATEWAY_ADDR:-127.0.0.1:19102}
# The simulator serves its crawlers' reverse and forward DNS here during the
# run; the scorer verifies Googlebot and Bingbot against it.
DNS_ADDR=${DNS_ADDR:-127.0.0.1:19153}
# The gateway's config: deploy/config/detect.yaml (routes to the shop, API
# keys minted by its /auth, a per-key limit the batch job fits) unless
# GATEWAY_CONFIG is set (set and empty: no file).
GATEWAY_CONFIG=${GATEWAY_CONFIG-$root/deploy/config/detect.yaml}

command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install redis-server" >&2; exit 1; }
out=var/detect
mkdir -p $out/bin
go build -o $out/bin/ ./gateway/cmd/gateway ./scorer/cmd/scorer ./deploy/cmd/shop ./deploy/cmd/geoipgen ./deploy/cmd/simulator
go build -o $out/bin/devstack ./deploy/devstack
$out/bin/geoipgen -out $out/demo-city.mmdb -asn-out $out/demo-asn.mmdb >/dev/null

pids=()
cleanup() {
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -INT "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

envfile=$out/stack.env
rm -f "$envfile"
$out/bin/devstack -env-file "$envfile" >$out/devstack.log 2>&1 & pids+=($!)
for _ in $(seq 600); do [ -s "$envfile" ] && break; sleep 0.2; done
[ -s "$envfile" ] || { cat $out/devstack.log; echo "dev stack did not start" >&2; exit 1; }
. "$envfile"

BULWARK_LISTEN=$SHOP_ADDR $out/bin/shop >$out/shop.log 2>&1 & pids+=($!)
BULWARK_LISTEN=$SCORER_ADDR BULWARK_GEOIP_DB=$root/$out/demo-city.mmdb BULWARK_GEOIP_ASN_DB=$root/$out/demo-asn.mmdb \
  BULWARK_DNS_SERVER=$DNS_ADDR BULWARK_LOG_LEVEL=warn $out/bin/scorer >$out/scorer.log 2>&1 & pids+=($!)
BULWARK_LISTEN=$GATEWAY_ADDR BULWARK_UPSTREAM_URL=http://$SHOP_ADDR BULWARK_SCORER_URL=http://$SCORER_ADDR \
  BULWARK_REDIS_URL=$BULWARK_TEST_REDIS_URL BULWARK_MONGO_URI=$BULWARK_TEST_MONGO_URI \
  BULWARK_TRUSTED_PROXIES=127.0.0.1 BULWARK_CONFIG=$GATEWAY_CONFIG \
  $out/bin/gateway >$out/gateway.log 2>&1 & pids+=($!)
for addr in $SHOP_ADDR $SCORER_ADDR $GATEWAY_ADDR; do
  for _ in $(seq 100); do curl -fs "http://$addr/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs "http://$addr/healthz" >/dev/null || { tail -n 20 $out/*.log; echo "a service at $addr did not come up" >&2; exit 1; }
done

echo "simulating $DURATION of traffic (seed $SEED)..."
$out/bin/simulator -target "http://$GATEWAY_ADDR" -duration "$DURATION" -seed "$SEED" -dns-listen "$DNS_ADDR" \
  -report -json $out/report.json -check "$@"
