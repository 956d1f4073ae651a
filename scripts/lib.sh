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
# use: ${TOKENGATE_VENV:-$ROOT/.venv}, with the tokengate package from clients/python and the
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
