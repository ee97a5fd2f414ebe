#!/usr/bin/env bash
# make soak: the long-outage proof, from outside. Starts a private dev stack
# (redis-server and FerretDB on free ports), then runs deploy/e2e's
# TestSoakMongoOutage: the real gateway binary, with an event spool and the
# default queue, refuses SOAK_RATE deny-listed requests a second (default
# 300, one unfolded deny_list event each) while a TCP proxy in front of
# MongoDB cuts it for SOAK_OUTAGE (default 180s: refused for the first
# half, black-holed for the second); 10 s of warm-up before, 60 s of load
# after. It passes when every refused request's event is in MongoDB
# exactly once and the gateway dropped none. The summary line is printed
# at the end and kept in var/soak/summary.txt; the gateway's log is
# var/soak/gateway.log. About 5 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=var/soak
export SOAK_OUTAGE=${SOAK_OUTAGE:-180s} SOAK_RATE=${SOAK_RATE:-300}

export PATH=$PATH:/usr/sbin
command -v redis-server >/dev/null || { echo "redis-server is missing: install Debian's redis-server package" >&2; exit 1; }

. deploy/devstack.sh
start_devstack "$root/$out"

rm -f "$out/summary.txt"
echo "== soak: MongoDB down for $SOAK_OUTAGE at $SOAK_RATE events/s"
BULWARK_SOAK=1 SOAK_LOG_DIR="$root/$out" SOAK_SUMMARY="$root/$out/summary.txt" \
  go test -count=1 -timeout 2h -run '^TestSoakMongoOutage$' -v ./deploy/e2e/ | tee "$out/test.log"
echo
cat "$out/summary.txt"
