"""The dbt marker: the file the dbt service (``deploy/bin/dbt-service``) writes once
``dbt build`` built this image's models, naming them by one digest (`` dumps`` after it
when the dumps' models were built too). The loader, the dashboard and the dumps' followers
wait at their gate (``deploy/bin/after-dbt``) until it names their models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from wiki_core.config import environment
from wiki_core.health import Verdict

from .project import PROJECT


@dataclass(frozen=True)
class Marker:
    """Where the marker is (``DBT_MARKER``) and whether the dumps' models belong to
    "built" (``WIKI_EVENTS_PROFILES`` holds ``dumps``)."""

    path: Path = Path("/dbt/dbt-built")
    dumps: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Marker:
        env = environment() if env is None else env
        return cls(Path(env.get("DBT_MARKER") or "/dbt/dbt-built"), dumps_wanted(env))


def dumps_wanted(env: dict[str, str] | None = None) -> bool:
    """The dumps' models are part of "built" when the compose profile ``dumps`` is on:
    ``WIKI_EVENTS_PROFILES`` is ``${COMPOSE_PROFILES}`` in the dbt service and ``dumps`` in
    the dumps followers' (compose.yaml)."""
    profiles = (environment() if env is None else env).get("WIKI_EVENTS_PROFILES", "")
    return "dumps" in tuple(p.strip() for p in profiles.split(",") if p.strip())


def models_digest(project: Path) -> str:
    """One hash of what ``dbt build`` builds: the project file, models, macros, tests."""
    digest = hashlib.sha256()
    files: list[Path] = [project / "dbt_project.yml"]
    for folder in ("models", "macros", "tests"):
        if (project / folder).is_dir():
            files += [p for p in (project / folder).rglob("*") if p.is_file()]
    for path in sorted(set(files)):
        digest.update(str(path.relative_to(project)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def marker_text(project: Path, dumps: bool) -> str:
    """What the marker holds once built: the models' digest, `` dumps`` when dbt built
    them with ``--vars '{dumps: true}'`` (deploy/bin/dbt-service reads it back)."""
    return models_digest(project) + (" dumps" if dumps else "")


def verdict(marker: Path, project: Path, dumps: bool = False) -> Verdict:
    """Built: the marker names these models, and with the dumps' when ``dumps``."""
    want = models_digest(project)
    try:
        built, *flags = marker.read_text().split() or [""]
    except FileNotFoundError:
        return Verdict(False, f"no {marker}: dbt has not built these models yet")
    if built != want:
        return Verdict(False, f"{marker} names models {built[:12]}, this image has {want[:12]}")
    if dumps and "dumps" not in flags:
        return Verdict(
            False,
            f"models {want[:12]} built without the dumps' (dbt builds them when "
            "COMPOSE_PROFILES in .env holds dumps)",
        )
    with_dumps = " with the dumps'" if "dumps" in flags else ""
    return Verdict(True, f"models {want[:12]} built{with_dumps}")


def building(marker: Marker | None = None) -> bool:
    """Whether dbt is still to build this image's models here: the marker's folder is
    there (a deployment, not a laptop) and the marker does not name these models."""
    marker = marker or Marker.from_env()
    return marker.path.parent.is_dir() and not verdict(marker.path, PROJECT).healthy
