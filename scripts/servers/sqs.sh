# SQS: npm local-aws-sqs, an in-memory server speaking the AWS JSON protocol
# of aws-sdk-go-v2's service/sqs. Sourced by scripts/test-servers.sh.
#
#   SINKBUS_SQS_PORT      port of the shared instance (default 9324)
#
# Exports SINKBUS_SQS_ENDPOINT for the tests (those that need the server to
# go down put a TCP proxy of their own in front of it).

sqs_version=2.0.2

# sqs_pid prints the pid of the instance this script started, if it still
# runs (a stale pid file may name an unrelated process by now).
sqs_pid() {
	local pidfile=$SINKBUS_SERVERS_DIR/sqs/sqs.pid pid
	[ -f "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	case "$(ps -p "$pid" -o args= 2>/dev/null)" in
	*"$SINKBUS_SERVERS_DIR/sqs/server.js"*) echo "$pid" ;;
	*) return 1 ;;
	esac
}

start_sqs() {
	local dir=$SINKBUS_SERVERS_DIR/sqs
	local port=${SINKBUS_SQS_PORT:-9324}
	local js=$dir/server.js pidfile=$dir/sqs.pid pid
	mkdir -p "$dir"

	if [ ! -f "$dir/node_modules/local-aws-sqs/package.json" ] ||
		! grep -q "\"version\": \"$sqs_version\"" "$dir/node_modules/local-aws-sqs/package.json"; then
		log "installing local-aws-sqs@$sqs_version"
		npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "local-aws-sqs@$sqs_version" >&2
	fi

	# The server script lives next to node_modules so that require() finds the
	# package wherever it is started from. Queues live in memory; deleted
	# names can be reused at once (emulateQueueCreationLifecycle: false).
	cat >"$js.tmp" <<'EOF'
// Usage: node server.js [PORT]  (default 9324). Listens on 127.0.0.1 only.
const { createSqsServer } = require("local-aws-sqs");
const port = Number(process.argv[2] || process.env.SINKBUS_SQS_PORT || 9324);
createSqsServer({ port, hostname: "127.0.0.1", emulateQueueCreationLifecycle: false }).then(() => {
	console.log(`local-aws-sqs listening on 127.0.0.1:${port}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
EOF
	mv "$js.tmp" "$js"

	if pid=$(sqs_pid); then
		port=$(cat "$dir/sqs.port" 2>/dev/null || echo "$port")
		log "sqs already running on 127.0.0.1:$port (pid $pid)"
	elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		log "port $port is taken by a process this script did not start; set SINKBUS_SQS_PORT"
		return 1
	else
		nohup node "$js" "$port" >"$dir/sqs.log" 2>&1 </dev/null &
		echo $! >"$pidfile"
		echo "$port" >"$dir/sqs.port"
		wait_port 127.0.0.1 "$port" 15 || {
			cat "$dir/sqs.log" >&2
			return 1
		}
		log "sqs listening on 127.0.0.1:$port (pid $(cat "$pidfile"), log $dir/sqs.log)"
	fi
	echo "export SINKBUS_SQS_ENDPOINT=http://127.0.0.1:$port"
}

stop_sqs() {
	local pid
	if pid=$(sqs_pid); then
		kill "$pid"
		log "sqs stopped (pid $pid)"
	fi
	rm -f "$SINKBUS_SERVERS_DIR/sqs/sqs.pid"
}
