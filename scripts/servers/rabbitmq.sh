# RabbitMQ with rabbitmq_stomp: the machine's RabbitMQ node, its STOMP plugin
# on 127.0.0.1:61613. Sourced by scripts/test-servers.sh.
#
# The node is a machine service shared with other projects: start_rabbitmq
# starts it only when nothing answers on 5672, installs it only when missing,
# and enables the plugin; stop_rabbitmq leaves both as they are.
#
# Exports SINKBUS_STOMP_RABBITMQ (host:port) with the guest user, which
# RabbitMQ accepts over loopback only, and SINKBUS_AMQP_URL, the node's AMQP
# listener with the same user. Queues named sinkbus-test.* (the
# tests') get a policy that deletes them after 10 idle minutes.

start_rabbitmq() {
	if ! command -v rabbitmq-server >/dev/null 2>&1; then
		log "installing rabbitmq-server"
		if ! apt-get install -y --no-install-recommends rabbitmq-server >&2; then
			apt-get update >&2
			apt-get install -y --no-install-recommends rabbitmq-server >&2
		fi
	fi

	if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
		# Enabling offline first makes the node start with STOMP at once.
		rabbitmq-plugins enable --offline rabbitmq_stomp >&2 || true
		log "starting rabbitmq-server"
		rabbitmq-server -detached >&2
		wait_port 127.0.0.1 5672 60 || return 1
	fi

	if ! (exec 3<>/dev/tcp/127.0.0.1/61613) 2>/dev/null; then
		log "enabling rabbitmq_stomp"
		rabbitmq-plugins enable rabbitmq_stomp >&2
		wait_port 127.0.0.1 61613 30 || return 1
	fi
	# Tests send to fresh sinkbus-test.* queues; RabbitMQ drops them once
	# unused for 10 minutes, and bounds them meanwhile.
	rabbitmqctl set_policy --apply-to queues sinkbus-test '^sinkbus-test\.' \
		'{"expires":600000,"max-length":200000}' >&2 ||
		log "could not set the sinkbus-test queue policy: test queues will stay"
	log "rabbitmq stomp listening on 127.0.0.1:61613"
	echo "export SINKBUS_STOMP_RABBITMQ=127.0.0.1:61613 SINKBUS_STOMP_RABBITMQ_USER=guest SINKBUS_STOMP_RABBITMQ_PASS=guest"
	echo "export SINKBUS_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/"
}

# The node and its plugins belong to the machine: nothing to stop.
stop_rabbitmq() {
	return 0
}
