# Sourced by deploy/test.sh and deploy/bench.sh: start_devstack DIR starts a
# private redis-server and FerretDB on free ports (deploy/devstack), stops
# them when the calling script exits, and exports BULWARK_TEST_REDIS_URL and
# BULWARK_TEST_MONGO_URI.
start_devstack() {
  local dir=$1
  mkdir -p "$dir" bin
  go build -o bin/devstack ./deploy/devstack
  local envfile=$dir/stack.env
  rm -f "$envfile"
  bin/devstack -env-file "$envfile" >"$dir/devstack.log" 2>&1 &
  devstack_pid=$!
  trap 'kill -INT "$devstack_pid" 2>/dev/null || true; wait "$devstack_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 600); do
    [ -s "$envfile" ] && break
    kill -0 "$devstack_pid" 2>/dev/null || { cat "$dir/devstack.log"; echo "dev stack failed to start" >&2; exit 1; }
    sleep 0.2
  done
  [ -s "$envfile" ] || { cat "$dir/devstack.log"; echo "dev stack not ready in 120s" >&2; exit 1; }
  set -a; . "$envfile"; set +a
  echo "redis: $BULWARK_TEST_REDIS_URL"
  echo "mongo: $BULWARK_TEST_MONGO_URI"
}
