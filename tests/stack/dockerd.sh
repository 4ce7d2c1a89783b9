#!/usr/bin/env bash
# dockerd.sh start|stop|restart: the Docker daemon without systemd (CI, this machine).
# start is a no-op when the daemon answers; the log goes to /var/log/wiki-events-dockerd.log.
set -euo pipefail
log=/var/log/wiki-events-dockerd.log
answers() { docker info >/dev/null 2>&1; }
start() {
    answers && return 0
    command -v dockerd >/dev/null || { echo "dockerd.sh: no dockerd: run ./setup" >&2; exit 1; }
    setsid nohup dockerd >>"$log" 2>&1 </dev/null &
    for _ in $(seq 120); do answers && return 0; sleep 0.5; done
    echo "dockerd.sh: dockerd did not come up; tail of $log:" >&2; tail -n 20 "$log" >&2; exit 1
}
stop() {
    local pid
    pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid"
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    echo "dockerd.sh: dockerd $pid did not stop" >&2; exit 1
}
case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    *) echo "usage: dockerd.sh start|stop|restart" >&2; exit 2 ;;
esac
