# The stack test's stand-in for the Hetzner server: a container that boots systemd and
# runs its own Docker (tests/helpers/vm.py starts it with the capabilities that needs).
# What cloud-init's `packages` would have installed on Ubuntu is installed here already
# (Debian's docker.io, git, python3; the Compose v2 plugin this machine has), with
# cloud-init itself: the test seeds the rendered user-data (NoCloud) and runs cloud-init's
# own modules on it. The data volume is a block device the test attaches.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# the base is the stand-in images' Debian, which carries RabbitMQ and Caddy: a server
# has neither (their ports are the stack's)
RUN apt-get purge -y -qq rabbitmq-server caddy && apt-get autoremove -y -qq --purge \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      docker.io systemd systemd-sysv dbus iptables git curl ca-certificates python3 \
      cloud-init locales procps kmod e2fsprogs util-linux openssl \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 # the locale cloud-init sets (en_US.UTF-8, its default) is one locale-gen can make
 && sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen \
 && rm -f /usr/sbin/policy-rc.d \
 # no cloud-init at boot: the test runs its stages itself, on the seed it writes
 && touch /etc/cloud/cloud-init.disabled \
 && echo 'datasource_list: [NoCloud]' > /etc/cloud/cloud.cfg.d/90-stand-in.cfg \
 # a container has no consoles, udev or time sync to wait for
 && systemctl mask getty@.service console-getty.service systemd-udevd.service \
      systemd-timesyncd.service systemd-logind.service 2>/dev/null || true
COPY docker-compose /usr/libexec/docker/cli-plugins/docker-compose
# udev's part at boot: a container has no udev, so systemd never sees the volume's device
# appear and its fstab entry (nofail) would stay unmounted after a reboot; this mounts
# what /etc/fstab lists once the device nodes are there, as udev would have let systemd
COPY stand-in-udev.service /etc/systemd/system/stand-in-udev.service
RUN systemctl enable stand-in-udev.service
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
