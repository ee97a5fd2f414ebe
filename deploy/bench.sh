#!/usr/bin/env bash
# make bench: the performance claims, measured. The scorer's rules and HTTP
# handler, and the gateway's chain against plain proxying in the same run
# (x-baseline is the ratio), on a private Redis from the dev stack.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. deploy/devstack.sh
start_devstack "$root/var/bench"
(cd scorer && go test -run '^$' -bench . -benchmem ./internal/rules/ ./internal/server/)
(cd gateway && go test -run '^$' -bench . -benchmem ./internal/server/ ./internal/lists/ ./internal/realip/ ./internal/events/)
