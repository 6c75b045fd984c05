#!/usr/bin/env bash
# Replays hostile requests (examples/server's TestAttack) against the built
# examples/server running in a process of its own, then restarts it on the
# same data directory. Fails on any 5xx, a request that hangs past its
# deadline, a secret in an answer or in the server's log, a crash, or a
# restart that does not serve.
#
#   scripts/attack.sh
#
# `go test ./examples/server` runs the same attack against the command
# started in-process.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
fail() {
	echo "attack: $*" >&2
	echo "--- server log ($work/server.log):" >&2
	tail -n 50 "$work/server.log" >&2 || true
	exit 1
}

export SINKBUS_API_TOKEN=atk-api-token-0f1e2d3c4b5a
export SINKBUS_INGEST_TOKEN=atk-ingest-token-5a4b3c2d1e0f
read_timeout=2s

go build -o "$work/server" ./examples/server
mkdir -p "$work/data/exports"
mkfifo "$work/data/exports/ca-fifo.pem" # a CA file that never ends, inside the path root
: >"$work/server.log"

# start runs the server on a free loopback port and sets url once it serves.
start() {
	local from
	from=$(wc -l <"$work/server.log")
	"$work/server" -addr 127.0.0.1:0 -data-dir "$work/data" -read-timeout "$read_timeout" >>"$work/server.log" 2>&1 &
	pid=$!
	url=
	for _ in $(seq 100); do
		url=$(tail -n +"$((from + 1))" "$work/server.log" | sed -n 's/.*msg=serving url=\(http:[^ ]*\).*/\1/p' | head -n 1)
		[[ -n $url ]] && return 0
		kill -0 "$pid" 2>/dev/null || fail "the server did not start"
		sleep 0.1
	done
	fail "the server did not say where it serves"
}

# stop ends the server as an operator does, and fails if it had crashed.
stop() {
	kill -0 "$pid" 2>/dev/null || fail "the server crashed"
	kill -TERM "$pid"
	wait "$pid" || fail "the server stopped with status $?"
	pid=
}

start
echo "attack: $url" >&2
SINKBUS_ATTACK_URL=$url SINKBUS_ATTACK_LOG=$work/server.log SINKBUS_ATTACK_READ_TIMEOUT=$read_timeout \
	SINKBUS_ATTACK_FIFO=ca-fifo.pem go test -count=1 -run '^TestAttack$' ./examples/server ||
	fail "the attack found a fault"
stop

# What the attack left in the data directory must not keep it from starting.
start
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SINKBUS_API_TOKEN" "$url/api/integrations")
[[ $status == 200 ]] || fail "after a restart the management API answers $status"
stop
if grep -q -e '^panic:' -e 'fatal error:' "$work/server.log"; then
	fail "the server panicked"
fi
echo "attack: no fault found" >&2
