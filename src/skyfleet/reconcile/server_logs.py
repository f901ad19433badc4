"""A server's own logs, read live from its site: the console output and the instance action history.

Why it exists: a tenant follows its servers on every site from one place, including what Nova itself
keeps about them. These reads go to the one site holding the server, with that site's credential,
for a server the access decision already gave the caller; nothing is stored. A site that cannot be
read answers 502 with its error.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db.engine import transaction
from skyfleet.domains.sites import service as sites
from skyfleet.drivers.openstack import computeapi
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import BadGateway, Conflict, SiteError
from skyfleet.secrets import SecretBox

POOL = SitePool()


def read(factory: sessionmaker[Session], box: SecretBox, *, site_id: str | None, remote_id: str | None, what: str,
         length: int | None, timeout: float) -> dict[str, Any]:
    """``what`` "console" or "actions" of the server ``remote_id`` on ``site_id``."""
    if site_id is None or remote_id is None:
        raise Conflict("the server is on no site yet")
    with transaction(factory) as session:
        site = sites.get_site(session, site_id)
        name, auth = site.name, sites.decrypt_auth(box, site)
    conn = POOL.connection(auth, timeout=timeout)
    try:
        if what == "console":
            return {"site": name, "output": computeapi.console_log(conn, remote_id, length=length)}
        return {"site": name, "actions": computeapi.instance_actions(conn, remote_id)}
    except SiteError as exc:
        raise BadGateway(f"site {name} did not give the server's {what}: {exc.message}") from exc
