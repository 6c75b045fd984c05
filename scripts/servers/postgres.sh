# PostgreSQL: the machine's server on 127.0.0.1:5432 (Debian's cluster, trust
# authentication on loopback, database `test`). Sourced by
# scripts/test-servers.sh.
#
#   SINKBUS_POSTGRES_URL  when set, the server to use instead (checked, not started)
#
# The server is a machine service shared with other projects: start_postgres
# starts the cluster only when nothing answers on 5432, installs PostgreSQL
# only when it is missing, and creates the `test` database when it lacks it;
# stop_postgres leaves it running. Tests give themselves a schema each and
# drop it when they end.
#
# Exports SINKBUS_POSTGRES_URL.

postgres_default_url=postgres://postgres@127.0.0.1:5432/test?sslmode=disable

start_postgres() {
	local url=${SINKBUS_POSTGRES_URL:-$postgres_default_url}
	if [ -n "${SINKBUS_POSTGRES_URL:-}" ]; then
		if ! psql "$url" -qtAc 'SELECT 1' >/dev/null 2>&1; then
			log "SINKBUS_POSTGRES_URL is set but nothing answers there"
			return 1
		fi
		log "postgres at the given SINKBUS_POSTGRES_URL"
		echo "export SINKBUS_POSTGRES_URL='$url'"
		return 0
	fi

	if ! command -v pg_ctlcluster >/dev/null 2>&1; then
		log "installing postgresql"
		if ! apt-get install -y --no-install-recommends postgresql >&2; then
			apt-get update >&2
			apt-get install -y --no-install-recommends postgresql >&2
		fi
		# Debian asks for passwords over TCP; the tests connect as postgres
		# on loopback without one, as on the project machine.
		local hba
		hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n 1)
		sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
	fi

	if ! pg_isready -q -h 127.0.0.1 -p 5432; then
		local version
		version=$(ls /etc/postgresql | sort -V | tail -n 1)
		log "starting postgresql $version"
		pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
		wait_port 127.0.0.1 5432 30 || return 1
		local i
		for ((i = 0; i < 100; i++)); do
			pg_isready -q -h 127.0.0.1 -p 5432 && break
			sleep 0.1
		done
	fi

	if ! psql "$url" -qtAc 'SELECT 1' >/dev/null 2>&1; then
		log "creating database test"
		psql "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" -qc 'CREATE DATABASE test' >&2 || return 1
	fi
	log "postgres listening on 127.0.0.1:5432"
	echo "export SINKBUS_POSTGRES_URL='$url'"
}

# The cluster belongs to the machine: nothing to stop.
stop_postgres() {
	return 0
}
