"""A stand-in for the Hetzner server: a container that boots systemd and runs its own
Docker (``wiki-events-test/vm:bookworm``, tests/stack/vm.Dockerfile), on a network of its
own whose gateway is this machine, with a block device as its data volume.

What stands for what:
- the server: the VM container, booted by systemd (PID 1), with Docker's own daemon in it
  (its /var/lib/docker on a folder of this machine: overlay2 does not stack on overlay);
- the Hetzner volume: a file-backed loop device formatted ext4 (terraform's ``format``),
  passed in at ``/dev/disk/by-id/scsi-0HC_Volume_<id>`` (the provider's ``linux_device``);
  detached from one VM and attached to the next, as a replaced server gets it;
- the first boot: cloud-init's own stages on the NoCloud seed of the rendered user-data;
- the Internet: services on the gateway address (this machine), which the VM and its
  containers reach through their own routes (the stream's emulator, the alert receiver,
  object storage, the wheelhouse that stands for PyPI);
- the registry: the stand-in images loaded into the VM's Docker under production's names.
"""

from __future__ import annotations

import ipaddress
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

VM_IMAGE = "wiki-events-test/vm:bookworm"
NETWORK = "wiki-events-test-vms"
# Every capability but those this kernel refuses a container (SYS_RESOURCE, BPF, PERFMON,
# CHECKPOINT_RESTORE made `docker run` fail here); --privileged fails in this sandbox
CAPABILITIES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
]


def docker(*args: str, timeout: float = 300, check: bool = True, **kw: object) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, **kw
    )  # type: ignore[call-overload]
    if check and done.returncode:
        raise AssertionError(
            f"docker {' '.join(args[:3])}… exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return str(done.stdout)


def network() -> tuple[str, str]:
    """The VMs' network (made once) and its gateway, this machine's address on it."""
    found = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", NETWORK],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode == 0 and found.stdout.strip():
        return NETWORK, str(next(ipaddress.ip_network(found.stdout.strip()).hosts()))
    taken = {
        ipaddress.ip_network(subnet)
        for subnet in docker(
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
            *docker("network", "ls", "-q").split(),
        ).split()
    }
    subnet = next(
        net
        for third in range(123, 250)
        if not any((net := ipaddress.ip_network(f"10.{third}.0.0/24")).overlaps(t) for t in taken)
    )
    gateway = str(next(subnet.hosts()))
    docker("network", "create", "--subnet", str(subnet), "--gateway", gateway, NETWORK)
    return NETWORK, gateway


@dataclass
class Volume:
    """The data volume: an ext4 file system on a loop device, like a fresh Hetzner volume
    created with ``format = "ext4"``."""

    path: Path
    size: str = "6G"
    volume_id: str = field(default_factory=lambda: str(uuid.uuid4().int % 10**7))
    loop: str = ""

    @property
    def linux_device(self) -> str:
        return f"/dev/disk/by-id/scsi-0HC_Volume_{self.volume_id}"

    def create(self) -> Volume:
        subprocess.run(["truncate", "-s", self.size, str(self.path)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.path)], check=True)
        self.loop = subprocess.run(
            ["losetup", "--find", "--show", str(self.path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return self

    def destroy(self) -> None:
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], check=False)
            self.loop = ""
        self.path.unlink(missing_ok=True)


@dataclass
class VM:
    """One stand-in server. ``environment`` is what this stand-in adds to the commands run
    on it and to the stack's systemd unit (the build's base image and wheelhouse, the
    stand-ins for the official python image and PyPI); ``files`` are written into it
    before it boots."""

    workdir: Path
    volume: Volume | None
    environment: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)  # path (no leading /) -> text
    name: str = field(default_factory=lambda: f"wiki-events-vm-{uuid.uuid4().hex[:8]}")
    address: str = ""

    def start(self) -> VM:
        net, _ = network()
        docker_dir = self.workdir / f"{self.name}-docker"
        docker_dir.mkdir(parents=True)
        args = [
            "create",
            "--name", self.name,
            "--hostname", "wiki-events",
            "--network", net,
            *[f"--cap-add={cap}" for cap in CAPABILITIES],
            "--security-opt", "seccomp=unconfined",
            "--security-opt", "apparmor=unconfined",
            "--security-opt", "systempaths=unconfined",
            "--cgroupns=host",
            "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs", "/run", "--tmpfs", "/run/lock",
            "-v", f"{docker_dir}:/var/lib/docker",
        ]  # fmt: skip
        if self.volume is not None:
            args += ["--device", f"{self.volume.loop}:{self.volume.linux_device}"]
        docker(*args, VM_IMAGE)
        # the stand-in's own files: the environment of the stack's unit (cloud-init installs
        # the unit itself, deploy/systemd/wiki-events.service; a drop-in beside it adds this)
        files = {
            "etc/systemd/system/wiki-events.service.d/stand-in.conf": (
                "# the stack test's stand-in VM (tests/helpers/vm.py)\n[Service]\n"
                + "".join(f"Environment={k}={v}\n" for k, v in self.environment.items())
            ),
            **self.files,
        }
        tree = self.workdir / f"{self.name}-files"
        for path, text in files.items():
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            (tree / path).write_text(text)
        docker("cp", f"{tree}/.", f"{self.name}:/")
        docker("start", self.name)
        return self.booted()

    def reboot(self) -> VM:
        """A clean reboot: systemd stops every unit (Docker's containers with it), then the
        machine boots again with what is on its disks."""
        docker("restart", "-t", "120", self.name, timeout=300)
        # the units that start the stack may take minutes: booted is "starting" too
        return self.booted(("running", "degraded", "starting"))

    def booted(self, states: tuple[str, ...] = ("running", "degraded")) -> VM:
        net, _ = network()
        deadline = time.monotonic() + 120
        while True:
            state = self.sh("systemctl is-system-running || true").stdout.strip()
            if state in states:
                break
            assert time.monotonic() < deadline, f"the VM did not boot: {state}"
            time.sleep(1)
        self.address = docker(
            "inspect",
            "-f",
            f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}',
            self.name,
        ).strip()
        return self

    def sh(
        self,
        script: str,
        *,
        stdin: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = False,
        timeout: float = 600,
        cwd: str = "/",
    ) -> subprocess.CompletedProcess[str]:
        """``script`` run by ``sh -c`` on the VM as root, as over SSH (a login's PATH)."""
        environment = {**self.environment, **(env or {})}
        argv = ["docker", "exec", "-i", "-w", cwd]
        for name, value in environment.items():
            argv += ["-e", f"{name}={value}"]
        argv += [self.name, "sh", "-c", script]
        done = subprocess.run(
            argv,
            input=stdin.encode() if isinstance(stdin, str) else stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        result = subprocess.CompletedProcess(
            argv,
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )
        if check and done.returncode:
            raise AssertionError(
                f"on the VM: {script!r} exited {done.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def load_images(self, images: Mapping[str, Sequence[str]]) -> None:
        """Each image of this machine into the VM's Docker, tagged there with the given
        names (production's), as a registry would have served them."""
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "exec", "-i", self.name, "docker", "load", "-q"],
            stdin=save.stdout,
            capture_output=True,
            timeout=900,
            check=False,
        )
        assert save.wait(60) == 0 and load.returncode == 0, load.stderr.decode()[-2000:]
        tags = " && ".join(
            f"docker tag {shlex.quote(src)} {shlex.quote(tag)}"
            for src, names in images.items()
            for tag in names
        )
        if tags:
            self.sh(tags, check=True)

    def seed(self, user_data: str, instance_id: str) -> None:
        """The NoCloud seed cloud-init reads: the rendered user-data and this instance."""
        self.sh(
            "mkdir -p /var/lib/cloud/seed/nocloud && cat > /var/lib/cloud/seed/nocloud/user-data",
            stdin=user_data,
            check=True,
        )
        self.sh(
            "cat > /var/lib/cloud/seed/nocloud/meta-data",
            stdin=f"instance-id: {instance_id}\nlocal-hostname: wiki-events\n",
            check=True,
        )

    def first_boot(self, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        """cloud-init's four stages, each run as its systemd unit runs it at a first boot
        (one failing does not stop the next), then ``cloud-init status --long``: its exit
        code and text are the boot's verdict, as terraform's settings push reads them."""
        self.sh(
            "cloud-init init --local; cloud-init init; "
            "cloud-init modules --mode config; cloud-init modules --mode final",
            timeout=timeout,
        )
        return self.sh("cloud-init status --long")

    def stop(self) -> None:
        docker("stop", "-t", "60", self.name, check=False, timeout=120)

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.name, check=False, timeout=120)
        shutil.rmtree(self.workdir / f"{self.name}-docker", ignore_errors=True)
