#!/bin/sh
# start | stop | restart | status of the example app's server. Lives in every release
# (live/releases/<id>/); the server's pid and log go to live/run/, beside releases/.
set -eu
release=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$release/../.." && pwd -P)
pidfile=$root/run/app.pid
mkdir -p "$root/run"

running() {
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

case "${1:-}" in
start)
    running && exit 0
    # Detached from drydock's pipes: the server outlives the command that starts it.
    nohup python3 "$release/server.py" >>"$root/run/app.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    ;;
stop)
    if running; then
        kill "$(cat "$pidfile")"
        while running; do sleep 0.1; done
    fi
    rm -f "$pidfile"
    ;;
restart)
    sh "$release/ctl.sh" stop
    sh "$release/ctl.sh" start
    ;;
status)
    running
    ;;
*)
    echo "usage: ctl.sh start|stop|restart|status" >&2
    exit 2
    ;;
esac
