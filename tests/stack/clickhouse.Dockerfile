# The stack test's stand-in for clickhouse/clickhouse-server (tagged with that name inside
# the stand-in VM, so production's compose.yaml runs unchanged): the embedded ClickHouse
# (chDB, `wiki-events clickhouse`) on the app image, started by /entrypoint.sh as uid 101
# (the official image's clickhouse user) with the users.d that compose.yaml mounts, and a
# /usr/bin/clickhouse-client for the healthcheck and deploy/bin/stack.
FROM wiki-events-test/app:test
USER root
# uid 101 by number: the base's Debian packages took the name's usual ids
RUN mkdir -p /var/lib/clickhouse /etc/clickhouse-server/config.d /etc/clickhouse-server/users.d \
 && chown 101:101 /var/lib/clickhouse
COPY clickhouse-standin /entrypoint.sh
COPY clickhouse-client /usr/bin/clickhouse-client
EXPOSE 8123
ENTRYPOINT ["/entrypoint.sh"]
CMD []
