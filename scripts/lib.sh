# Shared by scripts/run and scripts/test. Source it; do not run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '==> %s\n' "$*" >&2; }

# Installs the Debian packages that are missing (apt-get update runs only when something is).
ensure_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
            [ -x "$candidate/swift" ] && export PATH="$candidate:$PATH" && return 0
        done
        echo "A Swift 6.1 or newer toolchain is required: https://www.swift.org/install/linux/" >&2
        exit 1
    fi
}

# Starts a private redis-server on a free port (trying random ones), with its files in $1.
# Sets REDIS_PORT and REDIS_PID. `stop_redis` ends it.
start_redis() {
    local dir="$1" attempt port
    mkdir -p "$dir"
    for attempt in $(seq 1 20); do
        port="${REDIS_PREFERRED_PORT:-$((20000 + RANDOM % 40000))}"
        unset REDIS_PREFERRED_PORT
        redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
            --maxmemory-policy noeviction --logfile "$dir/redis.log" --daemonize no &
        REDIS_PID=$!
        for _ in $(seq 1 100); do
            if redis-cli -p "$port" ping >/dev/null 2>&1; then
                REDIS_PORT="$port"
                return 0
            fi
            kill -0 "$REDIS_PID" 2>/dev/null || break # it exited: the port was taken
            sleep 0.05
        done
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    done
    echo "could not start redis-server" >&2
    return 1
}

stop_redis() {
    if [ -n "${REDIS_PID:-}" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=""
    fi
}

# Creates (once) and updates the Python environment that the Python tests and the Flask sample app
# use: ${TOKENGATE_VENV:-$ROOT/.venv}, with the tokengate-client package from clients/python and the
# packages in tests/requirements.txt (pinned). Sets PYTHON to its interpreter.
ensure_venv() {
    local venv="${TOKENGATE_VENV:-$ROOT/.venv}"
    if [ ! -x "$venv/bin/python" ]; then
        log "creating the Python environment $venv"
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/tests/requirements.txt"
    # The package under test, rebuilt from the work tree every time (no stale copy).
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$ROOT/clients/python"
    export PYTHON="$venv/bin/python"
}

# A free TCP port below the ephemeral range (32768+), avoiding 6379-6399 (other Redis servers).
free_low_port() {
    local port
    while :; do
        port=$((10000 + RANDOM % 22000))
        [ "$port" -ge 6379 ] && [ "$port" -le 6399 ] && continue
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        echo "$port"
        return 0
    done
}

# Starts a Redis Sentinel set with its files in $1: a primary, 2 replicas and 3 sentinels watching
# it as "tokengate" (quorum 2, down after 2 s), all on free ports of 127.0.0.1. Sets
# SENTINEL_URL (redis+sentinel://… for TOKENGATE_REDIS_URL), SENTINEL_PRIMARY_PORT,
# SENTINEL_REPLICA_PORTS and SENTINEL_PORTS. `stop_sentinel_set` ends them.
start_sentinel_set() {
    local dir="$1" port i
    mkdir -p "$dir"
    SENTINEL_PIDS=()
    SENTINEL_PRIMARY_PORT="$(free_low_port)"
    SENTINEL_REPLICA_PORTS=()
    SENTINEL_PORTS=()
    for i in 0 1 2; do
        if [ "$i" -eq 0 ]; then port="$SENTINEL_PRIMARY_PORT"; else port="$(free_low_port)"; SENTINEL_REPLICA_PORTS+=("$port"); fi
        local replica=()
        [ "$i" -gt 0 ] && replica=(--replicaof 127.0.0.1 "$SENTINEL_PRIMARY_PORT")
        redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --dbfilename "dump-$port.rdb" --save "" --appendonly no \
            --maxmemory-policy noeviction --logfile "$dir/redis-$port.log" "${replica[@]}" --daemonize no &
        SENTINEL_PIDS+=($!)
    done
    for port in "$SENTINEL_PRIMARY_PORT" "${SENTINEL_REPLICA_PORTS[@]}"; do
        wait_for_redis "$port" || { echo "redis-server on $port did not start" >&2; return 1; }
    done
    for i in 0 1 2; do
        port="$(free_low_port)"
        SENTINEL_PORTS+=("$port")
        cat >"$dir/sentinel-$port.conf" <<CONF
port $port
bind 127.0.0.1
dir $dir
logfile $dir/sentinel-$port.log
sentinel monitor tokengate 127.0.0.1 $SENTINEL_PRIMARY_PORT 2
sentinel down-after-milliseconds tokengate 2000
sentinel failover-timeout tokengate 10000
sentinel parallel-syncs tokengate 1
CONF
        redis-server "$dir/sentinel-$port.conf" --sentinel &
        SENTINEL_PIDS+=($!)
    done
    for port in "${SENTINEL_PORTS[@]}"; do
        wait_for_redis "$port" || { echo "sentinel on $port did not start" >&2; return 1; }
    done
    # Both replicas in sync, and every sentinel knowing them: the set is ready for a failover.
    local ready=0
    for _ in $(seq 1 200); do
        ready=1
        for port in "${SENTINEL_REPLICA_PORTS[@]}"; do
            redis-cli -p "$port" role 2>/dev/null | sed -n 4p | grep -qx connected || ready=0
        done
        for port in "${SENTINEL_PORTS[@]}"; do
            [ "$(redis-cli -p "$port" sentinel replicas tokengate 2>/dev/null | grep -cx 'name')" -eq 2 ] || ready=0
        done
        [ "$ready" -eq 1 ] && break
        sleep 0.1
    done
    [ "$ready" -eq 1 ] || { echo "the Sentinel set did not come up" >&2; return 1; }
    SENTINEL_URL="redis+sentinel://$(printf '127.0.0.1:%s,' "${SENTINEL_PORTS[@]}" | sed 's/,$//')/tokengate/0"
}

stop_sentinel_set() {
    local pid
    for pid in "${SENTINEL_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "${SENTINEL_PIDS[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    SENTINEL_PIDS=()
}

# Waits (up to 5 s) until a redis-server or sentinel answers PING on $1.
wait_for_redis() {
    local _
    for _ in $(seq 1 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# Starts a Redis Cluster with its files in $1: 3 primaries and a replica of each (node timeout
# 2 s), on free ports of 127.0.0.1 with their bus ports set (cluster-port) below the ephemeral
# range. Sets CLUSTER_URL (redis+cluster://…), CLUSTER_PORTS and CLUSTER_PIDS. `stop_cluster` ends them.
start_cluster() {
    local dir="$1" i port bus
    mkdir -p "$dir"
    CLUSTER_PIDS=()
    CLUSTER_PORTS=()
    for i in 1 2 3 4 5 6; do
        port="$(free_low_port)"
        bus="$(free_low_port)"
        redis-server --port "$port" --cluster-port "$bus" --bind 127.0.0.1 --dir "$dir" --dbfilename "dump-$port.rdb" \
            --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 2000 \
            --save "" --appendonly no --maxmemory-policy noeviction --logfile "$dir/redis-$port.log" --daemonize no &
        CLUSTER_PIDS+=($!)
        CLUSTER_PORTS+=("$port")
        wait_for_redis "$port" || { echo "cluster node on $port did not start" >&2; return 1; }
    done
    redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") --cluster-replicas 1 --cluster-yes \
        >"$dir/create.log" 2>&1 || { cat "$dir/create.log" >&2; return 1; }
    # Every node agrees the cluster is up, and every replica is in sync.
    local ready=0
    for _ in $(seq 1 300); do
        ready=1
        for port in "${CLUSTER_PORTS[@]}"; do
            redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ready=0
            if redis-cli -p "$port" role 2>/dev/null | head -1 | grep -qx slave; then
                redis-cli -p "$port" role | sed -n 4p | grep -qx connected || ready=0
            fi
        done
        [ "$ready" -eq 1 ] && break
        sleep 0.1
    done
    [ "$ready" -eq 1 ] || { echo "the cluster did not come up" >&2; return 1; }
    CLUSTER_URL="redis+cluster://$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]:0:3}" | sed 's/,$//')/"
}

stop_cluster() {
    local pid
    for pid in "${CLUSTER_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "${CLUSTER_PIDS[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
}
