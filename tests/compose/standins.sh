# Stand-ins for the registry images that Dockerfile, deploy/app/Dockerfile and the compose files
# name (no registry is reachable from the test machines), built from Debian's packages on a
# debootstrap root file system. Sourced by tests/compose/run after engine.sh; not run on its own.
# Test scaffolding only: what users run pulls the real images.
#
# Each stand-in is labelled with the hash of its inputs (the function that builds it, the files it
# copies in, the toolchain's version, the image it starts from) and rebuilt only when that changes; the engine's data root lives in
# $COMPOSE_CACHE, so a second run on the same machine reuses them and a fresh machine builds them.

STANDINS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/standins"
LABEL=tokengate.compose-test.inputs

# The hash of the calling function's text and the given files.
inputs_hash() {
    { declare -f "${FUNCNAME[1]}"; cat "$@"; } | sha256sum | cut -c1-16
}

image_is_current() { # TAG HASH
    [ "$("$DOCKER" image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" = "$2" ]
}

# Runs SCRIPT in a container of BASE with host networking (apt-get and pip reach Debian's mirror
# and PyPI), bind mounts given as further `-v` arguments, then commits it as TAG with CHANGES.
commit_standin() { # TAG HASH BASE SCRIPT [docker run args...] -- [--change ...]
    local tag="$1" hash="$2" base="$3" script="$4" name="tokengate-standin-$RANDOM$RANDOM"
    shift 4
    local run_args=() changes=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do run_args+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    changes=("$@")
    local status=0
    "$DOCKER" run --name "$name" --network host "${run_args[@]}" "$base" sh -euc "$script" \
        && "$DOCKER" commit "${changes[@]}" --change "LABEL $LABEL=$hash" "$name" "$tag" >/dev/null || status=$?
    "$DOCKER" rm -f "$name" >/dev/null
    return "$status"
}

# The bookworm root file system every stand-in starts from, with this machine's apt sources and
# certificate authorities (an egress proxy here may present its own).
build_base() {
    local hash
    hash="$(inputs_hash /etc/apt/sources.list.d/debian.sources)"
    BASE_IMAGE="tokengate-standin/bookworm:$hash"
    image_is_current "$BASE_IMAGE" "$hash" && return 0
    log "stand-ins: debootstrap --variant=minbase bookworm (about 80 s)"
    local dir="$COMPOSE_CACHE/rootfs-$hash"
    rm -rf "$dir"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$dir" http://deb.debian.org/debian >"$COMPOSE_CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$COMPOSE_CACHE/debootstrap.log" >&2; return 1; }
    rm -f "$dir/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/debian.sources "$dir/etc/apt/sources.list.d/debian.sources"
    cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/" 2>/dev/null || true
    chroot "$dir" update-ca-certificates >/dev/null 2>&1 || true
    printf '%s\n' 'APT::Install-Recommends "false";' 'Acquire::Check-Valid-Until "false";' >"$dir/etc/apt/apt.conf.d/90standin"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -c . | "$DOCKER" import --change "LABEL $LABEL=$hash" --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$dir"
}

# debian:bookworm-slim: the root file system as it is.
build_debian() {
    local hash
    hash="$(inputs_hash /dev/null)-${BASE_IMAGE#*:}"
    image_is_current debian:bookworm-slim "$hash" && return 0
    log "stand-in debian:bookworm-slim"
    commit_standin debian:bookworm-slim "$hash" "$BASE_IMAGE" 'true' -- --change 'CMD ["bash"]'
}

# swift:<version>-bookworm: this machine's toolchain in /usr, the packages the official image
# installs for it to run, and git resolving https://github.com/OWNER/NAME to the local package
# copies the way this machine does (/opt/swift-packages, url.insteadof).
build_swift() { # VERSION
    local version="$1" toolchain hash
    toolchain="$(/opt/swift/usr/bin/swift --version 2>/dev/null | head -1)"
    hash="$(printf '%s\n' "$toolchain" "$BASE_IMAGE" "$(ls /opt/swift-packages/*/)" | inputs_hash -)"
    image_is_current "swift:$version-bookworm" "$hash" && return 0
    log "stand-in swift:$version-bookworm ($toolchain, about 3.5 GB)"
    commit_standin "swift:$version-bookworm" "$hash" "$BASE_IMAGE" '
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binutils git gnupg2 libc6-dev libcurl4-openssl-dev \
            libedit2 libgcc-12-dev libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev libncurses-dev libz3-dev \
            pkg-config tzdata zlib1g-dev unzip >/dev/null
        rm -rf /var/lib/apt/lists/*
        cp -a /host/swift/usr/. /usr/
        mkdir -p /opt/swift-packages && cp -a /host/swift-packages/. /opt/swift-packages/
        git config --system url./opt/swift-packages/.insteadof https://github.com/
        git config --system --add url./opt/swift-packages/.insteadof git@github.com:
        swift --version' \
        -v /opt/swift:/host/swift:ro -v /opt/swift-packages:/host/swift-packages:ro -- --change 'CMD ["bash"]'
}

# redis:7: Debian's redis-server, with the official image's entrypoint contract (standins/redis-entrypoint).
build_redis() {
    local hash
    hash="$(inputs_hash "$STANDINS_DIR/redis-entrypoint")-${BASE_IMAGE#*:}"
    image_is_current redis:7 "$hash" && return 0
    log "stand-in redis:7"
    commit_standin redis:7 "$hash" "$BASE_IMAGE" '
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
        rm -rf /var/lib/apt/lists/*
        install -m 0755 /host/redis-entrypoint /usr/local/bin/docker-entrypoint.sh
        install -d -o redis -g redis /data' \
        -v "$STANDINS_DIR/redis-entrypoint:/host/redis-entrypoint:ro" -- \
        --change 'WORKDIR /data' --change 'VOLUME /data' --change 'EXPOSE 6379' \
        --change 'ENTRYPOINT ["docker-entrypoint.sh"]' --change 'CMD ["redis-server"]'
}

# nginx:<version>: Debian's nginx (1.22) with the official image's layout and entrypoint
# (/docker-entrypoint.d, templates rendered by envsubst: standins/nginx-*). Not its STOPSIGNAL
# SIGQUIT (docker commit cannot set it): stopped with SIGTERM, nginx shuts down fast instead.
build_nginx() { # VERSION
    local version="$1" hash
    hash="$(inputs_hash "$STANDINS_DIR"/nginx-*)-${BASE_IMAGE#*:}"
    image_is_current "nginx:$version" "$hash" && return 0
    log "stand-in nginx:$version"
    commit_standin "nginx:$version" "$hash" "$BASE_IMAGE" '
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light gettext-base >/dev/null
        rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled /etc/nginx/conf.d/*
        install -m 0644 /host/nginx-nginx.conf /etc/nginx/nginx.conf
        install -m 0644 /host/nginx-default.conf /etc/nginx/conf.d/default.conf
        install -m 0755 /host/nginx-entrypoint /docker-entrypoint.sh
        mkdir -p /docker-entrypoint.d
        install -m 0755 /host/nginx-20-envsubst-on-templates.sh /docker-entrypoint.d/20-envsubst-on-templates.sh
        ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log' \
        -v "$STANDINS_DIR:/host:ro" -- \
        --change 'EXPOSE 80' \
        --change 'ENTRYPOINT ["/docker-entrypoint.sh"]' --change 'CMD ["nginx", "-g", "daemon off;"]'
}

# python:<version>-slim: Debian's python3 (3.11) and pip, installing into the system as the
# official image's pip does (no "externally managed" refusal).
build_python() { # VERSION
    local version="$1" hash
    hash="$(inputs_hash /dev/null)-${BASE_IMAGE#*:}"
    image_is_current "python:$version-slim" "$hash" && return 0
    log "stand-in python:$version-slim"
    commit_standin "python:$version-slim" "$hash" "$BASE_IMAGE" '
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip python-is-python3 >/dev/null
        rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED' -- \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' --change 'CMD ["python3"]'
}
