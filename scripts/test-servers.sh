#!/usr/bin/env bash
# Starts (or stops) every real server the tests use, on loopback only.
#
#   eval "$(scripts/test-servers.sh start)"   # start what is missing, export the addresses
#   scripts/test-servers.sh stop              # stop what this script started
#
# Each server has its own file in scripts/servers/NAME.sh defining
# start_NAME (prints `export VAR=value` lines on stdout) and stop_NAME.
# Progress goes to stderr so that stdout stays eval-able.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export SINKBUS_SERVERS_DIR=${SINKBUS_SERVERS_DIR:-$root/.servers}
mkdir -p "$SINKBUS_SERVERS_DIR"

log() { echo "test-servers: $*" >&2; }

# wait_port HOST PORT SECONDS: waits until something accepts TCP connections.
wait_port() {
	local host=$1 port=$2 secs=${3:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	log "nothing listens on $host:$port after ${secs}s"
	return 1
}

servers=()
for f in "$root"/scripts/servers/*.sh; do
	[ -e "$f" ] || continue
	# shellcheck source=/dev/null
	source "$f"
	servers+=("$(basename "$f" .sh)")
done

cmd=${1:-start}
shift || true
only=("$@")
[ ${#only[@]} -gt 0 ] || only=("${servers[@]}")

case "$cmd" in
start)
	for s in "${only[@]}"; do
		log "starting $s"
		"start_$s"
	done
	;;
stop)
	for s in "${only[@]}"; do
		log "stopping $s"
		"stop_$s" || true
	done
	;;
*)
	echo "usage: $0 start|stop [server...]  (servers: ${servers[*]:-none})" >&2
	exit 2
	;;
esac
