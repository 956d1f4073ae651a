# The compose suite's own Docker Engine and its stand-in images. Sourced by tests/compose/run after
# scripts/lib.sh; not run on its own.
#
# dockerd runs with its own --data-root (kept between runs in $COMPOSE_CACHE, so the stand-in and
# built images are cached on this machine), its own --exec-root, socket and pidfile, and with
# --iptables=false --bridge=none: it touches no firewall rule and no default bridge; the compose
# project's own bridge networks still work, and published ports on 127.0.0.1 go through docker's
# userland proxy. stop_engine ends it (by its pid) and leaves the cache.

COMPOSE_CACHE="${TOKENGATE_COMPOSE_CACHE:-/var/cache/tokengate-compose-test}"
ENGINE_RUN=/run/tokengate-compose-test
export DOCKER_HOST="unix://$ENGINE_RUN/docker.sock"
DOCKER=/usr/bin/docker # Debian's client, the Engine's own version (/usr/local/bin may hold another)

start_engine() {
    mkdir -p "$COMPOSE_CACHE/docker" "$ENGINE_RUN/exec"
    if [ -f "$ENGINE_RUN/dockerd.pid" ] && kill -0 "$(cat "$ENGINE_RUN/dockerd.pid")" 2>/dev/null; then
        echo "a compose-suite dockerd is already running (pid $(cat "$ENGINE_RUN/dockerd.pid")): another run?" >&2
        return 1
    fi
    dockerd --data-root "$COMPOSE_CACHE/docker" --exec-root "$ENGINE_RUN/exec" \
        -H "$DOCKER_HOST" --pidfile "$ENGINE_RUN/dockerd.pid" --iptables=false --bridge=none \
        >"$ENGINE_RUN/dockerd.log" 2>&1 &
    ENGINE_PID=$!
    for _ in $(seq 1 300); do
        "$DOCKER" version >/dev/null 2>&1 && return 0
        kill -0 "$ENGINE_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$ENGINE_RUN/dockerd.log" >&2
    echo "dockerd did not start" >&2
    return 1
}

stop_engine() {
    [ -n "${ENGINE_PID:-}" ] || return 0
    kill "$ENGINE_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$ENGINE_PID" 2>/dev/null || true
    wait "$ENGINE_PID" 2>/dev/null || true
    ENGINE_PID=""
}
