# ActiveMQ Classic (Debian `activemq`, the engine behind Amazon MQ) with a
# STOMP connector on 127.0.0.1:61614 and a password-protected user. Sourced by
# scripts/test-servers.sh.
#
# Debian's package ships no STOMP connector, no authentication and no enabled
# instance, so this runs the package's launcher jar with its own base, conf
# and data directories under $SINKBUS_SERVERS_DIR/activemq. Port 61613 is left
# to RabbitMQ's STOMP plugin.
#
#   SINKBUS_ACTIVEMQ_PORT   STOMP port (default 61614)
#
# Exports SINKBUS_STOMP_ACTIVEMQ (host:port) with the user sinkbus/sinkbus-pass,
# who may do everything. A second user, sinkbus-reader/sinkbus-reader-pass,
# may read but not send.

activemq_user=sinkbus
activemq_pass=sinkbus-pass

start_activemq() {
	local dir=$SINKBUS_SERVERS_DIR/activemq
	local port=${SINKBUS_ACTIVEMQ_PORT:-61614}
	local pidfile=$dir/activemq.pid home=/usr/share/activemq

	if [ ! -f "$home/bin/activemq.jar" ]; then
		log "installing activemq"
		if ! apt-get install -y --no-install-recommends activemq >&2; then
			apt-get update >&2
			apt-get install -y --no-install-recommends activemq >&2
		fi
	fi
	mkdir -p "$dir/conf" "$dir/data"

	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		port=$(cat "$dir/activemq.port")
		log "activemq already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
		wait_port 127.0.0.1 "$port" 60 || return 1
		activemq_exports "$port"
		return 0
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		log "port $port is taken by a process this script did not start; set SINKBUS_ACTIVEMQ_PORT"
		return 1
	fi

	activemq_write_conf "$dir" "$port"
	nohup java -Xmx256m \
		-Dactivemq.home="$home" -Dactivemq.base="$dir" \
		-Dactivemq.conf="$dir/conf" -Dactivemq.data="$dir/data" \
		-jar "$home/bin/activemq.jar" start "xbean:file:$dir/conf/activemq.xml" \
		>"$dir/activemq.out" 2>&1 </dev/null &
	echo $! >"$pidfile"
	echo "$port" >"$dir/activemq.port"
	wait_port 127.0.0.1 "$port" 60 || {
		tail -n 40 "$dir/activemq.out" "$dir/data/activemq.log" >&2 2>/dev/null
		return 1
	}
	log "activemq stomp listening on 127.0.0.1:$port (pid $(cat "$pidfile"), log $dir/data/activemq.log)"
	activemq_exports "$port"
}

activemq_exports() {
	echo "export SINKBUS_STOMP_ACTIVEMQ=127.0.0.1:$1 SINKBUS_STOMP_ACTIVEMQ_USER=$activemq_user SINKBUS_STOMP_ACTIVEMQ_PASS=$activemq_pass"
}

# activemq_write_conf DIR PORT writes DIR/conf/activemq.xml and the logging
# configuration, which the launcher finds on its class path (the conf dir).
activemq_write_conf() {
	local dir=$1 port=$2
	cat >"$dir/conf/activemq.xml" <<EOF
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
       http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="sinkbus-test" useJmx="false"
          dataDirectory="$dir/data" schedulerSupport="false">
    <persistenceAdapter>
      <kahaDB directory="$dir/data/kahadb"/>
    </persistenceAdapter>
    <plugins>
      <simpleAuthenticationPlugin anonymousAccessAllowed="false">
        <users>
          <authenticationUser username="$activemq_user" password="$activemq_pass" groups="users"/>
          <!-- May read but not send: tests of refused sends. -->
          <authenticationUser username="sinkbus-reader" password="sinkbus-reader-pass" groups="readers"/>
        </users>
      </simpleAuthenticationPlugin>
      <authorizationPlugin>
        <map>
          <authorizationMap>
            <authorizationEntries>
              <authorizationEntry queue="&gt;" read="users,readers" write="users" admin="users,readers"/>
              <authorizationEntry topic="&gt;" read="users,readers" write="users" admin="users,readers"/>
            </authorizationEntries>
          </authorizationMap>
        </map>
      </authorizationPlugin>
    </plugins>
    <!-- Limits that fit the -Xmx256m heap (the defaults assume 1 GB). -->
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage limit="128 mb"/></memoryUsage>
        <storeUsage><storeUsage limit="4 gb"/></storeUsage>
        <tempUsage><tempUsage limit="1 gb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$port"/>
    </transportConnectors>
  </broker>
</beans>
EOF
	# The Debian launcher logs through log4j 1.2.
	cat >"$dir/conf/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, file
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.file=${activemq.data}/activemq.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d | %-5p | %m | %c%n
EOF
}

stop_activemq() {
	local dir=$SINKBUS_SERVERS_DIR/activemq
	local pidfile=$dir/activemq.pid pid i
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "activemq (pid $pid) did not stop in 30s; killing it"
			kill -9 "$pid" 2>/dev/null || true
		fi
		log "activemq stopped (pid $pid)"
	fi
	rm -f "$pidfile"
}
