# shellcheck shell=bash
# S3: versitygw, an S3 gateway storing objects as plain files (posix backend).
# Sourced by scripts/test-servers.sh, which provides log and wait_port.
#
#   start_s3   installs versitygw once (a ~100 s build, cached across runs in
#              ${XDG_CACHE_HOME:-~/.cache}/sinkbus/bin), starts it on
#              127.0.0.1:7070 and prints the SINKBUS_S3_* exports.
#   stop_s3    stops the gateway start_s3 started.

S3_VERSITYGW_VERSION=v1.8.0
S3_HOST=127.0.0.1
S3_PORT=7070
S3_ACCESS_KEY=test
S3_SECRET_KEY=testsecret

s3_bin() {
	echo "${XDG_CACHE_HOME:-$HOME/.cache}/sinkbus/bin/versitygw"
}

# s3_install builds versitygw into the cache unless the cached binary is the
# pinned version (go version -m reads the module version the binary records).
s3_install() {
	local bin
	bin=$(s3_bin)
	if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null |
		grep -Eq "^[[:space:]]+mod[[:space:]]+github.com/versity/versitygw[[:space:]]+$S3_VERSITYGW_VERSION[[:space:]]"; then
		return 0
	fi
	log "building versitygw $S3_VERSITYGW_VERSION into $(dirname "$bin") (about 100 s, once)"
	mkdir -p "$(dirname "$bin")"
	(cd / && GOBIN=$(dirname "$bin") GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$S3_VERSITYGW_VERSION") >&2
}

s3_exports() {
	echo "export SINKBUS_S3_ENDPOINT=http://$S3_HOST:$S3_PORT SINKBUS_S3_ACCESS_KEY=$S3_ACCESS_KEY SINKBUS_S3_SECRET_KEY=$S3_SECRET_KEY"
	echo "export SINKBUS_VERSITYGW_BIN=$(s3_bin)"
}

start_s3() {
	local dir=$SINKBUS_SERVERS_DIR/s3 bin args
	s3_install
	if (exec 3<>"/dev/tcp/$S3_HOST/$S3_PORT") 2>/dev/null; then
		log "s3: something already listens on $S3_HOST:$S3_PORT, using it"
		s3_exports
		return 0
	fi
	bin=$(s3_bin)
	mkdir -p "$dir/data"
	args=()
	# Object metadata lives in extended attributes, which tmpfs lacks.
	if [ "$(stat -f -c %T "$dir/data")" = tmpfs ]; then
		mkdir -p "$dir/meta"
		args=(--sidecar "$dir/meta")
	fi
	nohup "$bin" --access "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" --port "$S3_HOST:$S3_PORT" \
		--health /health --quiet posix "${args[@]}" "$dir/data" >"$dir/versitygw.log" 2>&1 &
	echo $! >"$dir/pid"
	if ! wait_port "$S3_HOST" "$S3_PORT" 30; then
		log "s3: versitygw did not start, see $dir/versitygw.log"
		return 1
	fi
	log "s3: versitygw $S3_VERSITYGW_VERSION on $S3_HOST:$S3_PORT (pid $(cat "$dir/pid"), data in $dir/data)"
	s3_exports
}

stop_s3() {
	local pidfile=$SINKBUS_SERVERS_DIR/s3/pid pid i
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	# Only our gateway: the pid may have been reused since.
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = versitygw ] && kill "$pid" 2>/dev/null; then
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	log "s3: stopped"
}
