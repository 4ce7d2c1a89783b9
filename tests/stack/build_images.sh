#!/usr/bin/env bash
# Builds the stack test's images on a machine that can reach no container registry:
#   wiki-events-test/base:bookworm  Debian bookworm from debootstrap (the machine's own
#                                   Debian mirror, read from its apt configuration)
#   wiki-events-test/app:TAG        the production Dockerfile on that base; also runs the
#                                   ClickHouse stand-in (`wiki-events clickhouse`)
#   wiki-events-test/rabbitmq:3     Debian's rabbitmq-server
#   wiki-events-test/caddy:2        Debian's caddy
# Python wheels are built on the host first (its pip configuration and CA bundle stay on
# the host: nothing of them enters an image or the repository), then installed in the
# image with --no-index. Images that exist are kept, but the app image only while it was
# built from the same sources (a label holds their digest: a changed file rebuilds it);
# FORCE=1 rebuilds everything.
# Usage: tests/stack/build_images.sh [APP_TAG]   (default: test)
set -euo pipefail
cd "$(dirname "$0")/../.."
APP_TAG="${1:-test}"
BASE=wiki-events-test/base:bookworm
have() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
stamp() { echo "build_images: $(date -u +%T) $*"; }
# the digest of what the app image is built from (the Dockerfile's COPY sources)
app_sources() {
    find Dockerfile pyproject.toml constraints.txt README.md wiki_core wiki_events \
        local_clickhouse reader loader dash_app dumps wiki_dbt deploy/rabbitmq deploy/bin \
        -type f -not -path '*/__pycache__/*' -not -path 'wiki_dbt/target/*' \
        -not -path 'wiki_dbt/logs/*' -not -path 'wiki_dbt/dbt_packages/*' \
        -not -name '.user.yml' -not -name '*.pyc' -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}
built_from() { docker image inspect -f '{{ index .Config.Labels "wiki-events.sources" }}' "$1" 2>/dev/null; }

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

if ! have "$BASE"; then
    stamp "debootstrap $BASE"
    root=$(mktemp -d /var/tmp/wiki-events-rootfs.XXXXXX)
    trap 'rm -rf "$root"' EXIT
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
    rm -rf "$root"; trap - EXIT
fi

sources=$(app_sources)
if ! have "wiki-events-test/app:$APP_TAG" || [ "$(built_from "wiki-events-test/app:$APP_TAG")" != "$sources" ]; then
    stamp "wheels for wiki-events-test/app:$APP_TAG"
    rm -rf deploy/wheels/*.whl
    .venv/bin/python -m pip wheel -q -c constraints.txt -w deploy/wheels . >/dev/null
    stamp "docker build wiki-events-test/app:$APP_TAG"
    DOCKER_BUILDKIT=0 docker build -q --build-arg BASE_IMAGE="$BASE" \
        --build-arg PIP_OFFLINE=1 --label "wiki-events.sources=$sources" \
        -t "wiki-events-test/app:$APP_TAG" . >/dev/null
    rm -f deploy/wheels/*.whl
fi
for svc in rabbitmq caddy; do
    tag=$([ $svc = rabbitmq ] && echo 3 || echo 2)
    if ! have "wiki-events-test/$svc:$tag"; then
        stamp "docker build wiki-events-test/$svc:$tag"
        DOCKER_BUILDKIT=0 docker build -q --build-arg BASE_IMAGE="$BASE" \
            -t "wiki-events-test/$svc:$tag" -f "tests/stack/$svc.Dockerfile" tests/stack >/dev/null
    fi
done
stamp done
