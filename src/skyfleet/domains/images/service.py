"""What is particular to declared images, on top of the desired-resource machinery of ``domains.sync``.

Why it exists: an image is a desired resource like a keypair (one row, one binding per site, the
same converge and drift audit), but where it goes depends on its sync mode as well as on its
placement: ``none`` catalogues it only, ``auto`` copies it to every placed site (and to sites that
join the placement later, at the next drift audit), ``lazy`` copies it to a placed site only once
that site is asked for (a first use), and the sites so activated keep their copy. Concurrent first
uses are collapsed into one copy because converge never starts a second task for a binding whose
task is open, and the request that activates a site holds the resource's row lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from skyfleet.domains.images import rollout
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import DELETING, SyncResource
from skyfleet.errors import Conflict

MODES = ("none", "auto", "lazy", "controlled")


def targets(resource: SyncResource, placed: Sequence[Site]) -> tuple[list[Site], set[str]]:
    """The placed sites that should hold the current version now, by the image's mode, and the sites
    whose copies are to be left as they are (not reached yet by a controlled rollout)."""
    mode = resource.options.get("mode", "auto")
    source = resource.spec.get("source") or {}
    if mode == "none" or (source.get("upload") and not source.get("image_id")):
        return [], set()  # catalogued only, or the bytes are still to be uploaded
    if mode == "lazy":
        activated = set(resource.options.get("activated") or [])
        return [s for s in placed if s.id in activated], set()
    hold = rollout.held(resource, placed) if mode == "controlled" else set()
    return [s for s in placed if s.id not in hold], hold


def activate(session: Session, *, resource: SyncResource, site: Site, placed: Sequence[Site],
             now: datetime) -> bool:
    """Ask for a copy on ``site`` (a lazy image's first use there); False when it was asked before."""
    if resource.state == DELETING:
        raise Conflict(f"image {resource.name!r} is being deleted")
    if resource.options.get("mode", "auto") == "none":
        raise Conflict(f"image {resource.name!r} has sync mode none (catalogued only); change its mode to copy it")
    if site.id not in {s.id for s in placed}:
        raise Conflict(f"site {site.name} is not in the placement of image {resource.name!r}")
    activated = list(resource.options.get("activated") or [])
    if site.id in activated:
        return False
    resource.options = {**resource.options, "activated": [*activated, site.id]}
    resource.updated_at = now
    return True


def url_allowed(url: str, allow: str) -> bool:
    """Whether ``url`` starts with one of the admin's allowed prefixes (comma-separated)."""
    prefixes = [p.strip() for p in allow.split(",") if p.strip()]
    return any(url.startswith(prefix) for prefix in prefixes)
