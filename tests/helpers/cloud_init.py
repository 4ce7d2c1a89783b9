"""The server's first boot as cloud-init runs it, for tests on this machine.

terraform renders ``terraform/cloud-init.yaml.tftpl`` with ``templatefile()``; cloud-init's
``runcmd`` module turns the ``runcmd`` list into one ``sh`` script with its own
``util.shellify`` (``cc_runcmd.handle``: list items single-quoted word by word, string
items written as they are, a ``#!/bin/sh`` header), and its ``scripts_user`` module runs
that script with ``subp.runparts`` over the instance's ``scripts`` folder. Both are called
here from Debian's cloud-init package (the system ``python3``; the virtualenv has no
``cloudinit``), so the script a test runs is byte for byte the one a server runs.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import yaml

from .paths import ROOT

TEMPLATE = ROOT / "terraform" / "cloud-init.yaml.tftpl"
# Debian's cloud-init package installs into the system interpreter's dist-packages
CLOUD_INIT_PYTHON = "/usr/bin/python3"

# values terraform passes to templatefile() (terraform/main.tf), as on a real server
SAMPLE = {
    # base64 of {"DOMAIN": "wiki.example.org"}: terraform's jsonencode of the settings
    "settings_b64": "eyJET01BSU4iOiAid2lraS5leGFtcGxlLm9yZyJ9",
    "volume_device": "/dev/disk/by-id/scsi-0HC_Volume_1234567",
    "repo_url": "https://git.example.org/you/wiki-events.git",
    "git_ref": "main",
}


def render_user_data(values: Mapping[str, str] = SAMPLE) -> str:
    """templatefile() for this template: only ``${name}`` interpolations, checked complete."""
    template = TEMPLATE.read_text()
    names = set(re.findall(r"\$\{(\w+)\}", template))
    assert names == set(values), names ^ set(values)
    assert "%{" not in template
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)


def _cloud_init(code: str, stdin: str = "") -> str:
    done = subprocess.run(
        [CLOUD_INIT_PYTHON, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"cloud-init's python failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def runcmd_script(user_data: str) -> str:
    """The script cloud-init writes to /var/lib/cloud/instance/scripts/runcmd."""
    config = yaml.safe_load(user_data)
    return _cloud_init(
        "import json, sys\n"
        "from cloudinit import util\n"
        "sys.stdout.write(util.shellify(json.load(sys.stdin)))\n",
        json.dumps(config["runcmd"]),
    )


# run inside whatever environment the caller prepared (PATH, a sandbox): cloud-init's own
# runparts, which raises (and so exits non-zero) when a script in the folder fails
RUNPARTS = (
    "import sys\n"
    "from cloudinit import subp\n"
    "try:\n"
    "    subp.runparts(sys.argv[1])\n"
    "except RuntimeError as exc:\n"
    "    sys.exit(f'scripts_user: {exc}')\n"
)


def scripts_folder(script: str, folder: Path) -> Path:
    """``folder`` as the instance's scripts folder holding ``runcmd`` (mode 0700, as
    cc_runcmd writes it); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "runcmd"
    path.write_text(script)
    path.chmod(0o700)
    return folder


def runparts_argv(folder: Path) -> list[str]:
    """The command that runs ``folder`` as cloud-init's scripts_user module does."""
    return [CLOUD_INIT_PYTHON, "-c", RUNPARTS, str(folder)]
