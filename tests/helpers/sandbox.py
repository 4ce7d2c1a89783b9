"""Run a server-side script unmodified on this machine: its own view of the file system,
every program it calls replaced by a stand-in that logs its argv.

A script written for the server (cloud-init's runcmd, terraform's remote-exec) names
absolute paths: it writes ``/etc/fstab``, runs ``/opt/wiki-events/deploy/bin/...``, reads
``/root/...``. :func:`run_sandboxed` runs it in a private mount namespace (``unshare``)
where ``/etc`` is a throw-away overlay and the paths a test names are bind mounts of its
own temporary folders, so nothing it writes reaches this machine, and the test reads what
it wrote from those folders. :func:`stand_ins` makes a folder of stand-ins to be the whole
``PATH``: a program the script calls that has no stand-in is not found, and the script
fails as it would on a server without that program.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

# each stand-in appends one line: its name, then each argument after a tab
_LOG = (
    '#!/bin/sh\nprintf %s "${0##*/}" >> "$STANDIN_LOG"\n'
    'for a in "$@"; do printf \'\\t%s\' "$a" >> "$STANDIN_LOG"; done\n'
    "printf '\\n' >> \"$STANDIN_LOG\"\n"
)


def stand_ins(folder: Path, behaviour: Mapping[str, str]) -> Path:
    """``folder`` filled with one executable per name: it logs its argv to ``$STANDIN_LOG``
    then runs its behaviour (shell text; empty: succeed). Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in behaviour.items():
        path = folder / name
        path.write_text(_LOG + body + ("\n" if body else ""))
        path.chmod(0o755)
    return folder


def logged(log: Path) -> list[list[str]]:
    """The stand-ins' log: one [name, arg, ...] per call, in order."""
    if not log.exists():
        return []
    return [line.split("\t") for line in log.read_text().splitlines()]


def real(name: str) -> str:
    """The real program, for a stand-in that logs and then runs it."""
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert path, name
    return path


def run_sandboxed(
    argv: Sequence[str],
    *,
    mounts: Mapping[str, Path],
    scratch: Path,
    read_only: Sequence[str] = (),
    env: Mapping[str, str],
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``argv`` in a private mount namespace: ``/etc`` overlaid (its writes go to a tmpfs
    on ``scratch``, an empty folder, and vanish), then each target path of ``mounts``
    (shortest first) a bind mount of its host file or folder, those in ``read_only``
    read-only. ``env`` is the whole environment ``argv`` gets."""
    mount, mkdir = real("mount"), real("mkdir")
    scratch.mkdir(parents=True, exist_ok=True)
    steps = ["set -eu"]
    # /etc's writes land in a tmpfs of this namespace, so a bind can target a new /etc path
    steps += [
        f"{mount} -t tmpfs tmpfs {shlex.quote(str(scratch))}",
        f"{mkdir} -p {shlex.quote(str(scratch / 'etc-upper'))} "
        f"{shlex.quote(str(scratch / 'etc-work'))}",
        f"{mount} -t overlay overlay -o lowerdir=/etc,"
        f"upperdir={scratch / 'etc-upper'},workdir={scratch / 'etc-work'} /etc",
    ]
    for target in sorted(mounts, key=len):
        source = mounts[target]
        if not Path(target).exists():
            # made inside the namespace: only where that writes to /etc's overlay or into
            # another mount's folder, never onto this machine's own file system
            inside = [m for m in mounts if m != target and target.startswith(m + "/")]
            assert inside or target.startswith("/etc/"), f"{target}: no mount holds it"
        if source.is_dir():
            steps.append(f"{mkdir} -p {shlex.quote(target)}")
        elif not Path(target).exists():
            parent = shlex.quote(str(Path(target).parent))
            steps.append(f"{mkdir} -p {parent} && : > {shlex.quote(target)}")
        steps.append(f"{mount} --bind {shlex.quote(str(source))} {shlex.quote(target)}")
        if target in read_only:
            steps.append(f"{mount} -o remount,bind,ro {shlex.quote(target)}")
    steps.append('exec "$@"')
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:  # a user namespace grants the mounts to a non-root user
        namespace.append("--map-root-user")
    return subprocess.run(
        [real("unshare"), *namespace[1:], "/bin/sh", "-c", "\n".join(steps), "sandbox", *argv],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
