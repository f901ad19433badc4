"""The Neutron VPNaaS calls of a routing domain meshed with site-to-site IPsec: whether the site
offers VPNaaS at all, then IKE and IPsec policies, a VPN service on a router, endpoint groups (the
local subnets, the peer's CIDRs) and IPsec site connections, all written in a given project by the
site's admin credential, each carrying Skyfleet's mark in its ``description``.

Why it exists: VPNaaS is an optional Neutron plugin; many sites do not have it.
:func:`vpnaas_available` reads the site's extensions once per task and
:func:`require_vpnaas` turns an absent extension into the same clear, permanent per-site answer
(:data:`NOT_AVAILABLE`) instead of a 404 retried for ever. Neutron returns a connection's pre-shared
key in every answer: this module drops it (``psk``) from everything it returns, so no caller can log
or store it by mistake. Plain REST through :func:`skyfleet.drivers.openstack.syncapi._call`: only
:class:`~skyfleet.errors.SiteError` leaves; "absent" is None or False, never an exception.
"""

from __future__ import annotations

from typing import Any

from openstack import connection as sdk_connection

from skyfleet.drivers.openstack.syncapi import _call, _listing
from skyfleet.errors import PermanentSiteError, SiteError

Json = dict[str, Any]
NOT_AVAILABLE = "not available: the site's Neutron has no vpnaas extension"
#: Neutron's error type for an update of a VPN object still ``PENDING_*``
PENDING_REFUSAL = "VPNStateInvalidToUpdate"
#: collection under /vpn -> the singular key of its bodies
COLLECTIONS = {"ikepolicies": "ikepolicy", "ipsecpolicies": "ipsecpolicy", "vpnservices": "vpnservice",
               "endpoint-groups": "endpoint_group", "ipsec-site-connections": "ipsec_site_connection"}


def _clean(item: Json) -> Json:
    """The item without its pre-shared key (Neutron returns it; Skyfleet never passes it on)."""
    return {k: v for k, v in item.items() if k != "psk"}


def _keyed(conn: sdk_connection.Connection, method: str, url: str, body: Json, psk: str) -> Json:
    """A request carrying the key: a failure's message (the site's words) never quotes it."""
    try:
        return dict(_call(conn, "network", method, url, body=body)["ipsec_site_connection"])
    except SiteError as exc:
        message = exc.message.replace(psk, "***")
        raise type(exc)(message, status=exc.status) from None


def vpnaas_available(conn: sdk_connection.Connection) -> bool:
    """Whether the site's Neutron lists the ``vpnaas`` extension."""
    body = _call(conn, "network", "GET", "/extensions")
    return any(ext.get("alias") == "vpnaas" for ext in body.get("extensions") or [])


def require_vpnaas(conn: sdk_connection.Connection) -> None:
    """Raise the permanent per-site :data:`NOT_AVAILABLE` error when the site has no VPNaaS."""
    if not vpnaas_available(conn):
        raise PermanentSiteError(NOT_AVAILABLE)


def find_marked(conn: sdk_connection.Connection, collection: str, *, project_id: str, mark: str,
                prefix: bool = False) -> list[Json]:
    """Every object of ``collection`` (a key of :data:`COLLECTIONS`) in the project carrying ``mark``
    (``prefix``: a description starting with it), oldest first."""
    key = collection.replace("-", "_")
    items = _listing(conn, "network", f"/vpn/{collection}", key, {"project_id": project_id})
    found = [_clean(item) for item in items if str(item.get("description") or "") == mark
             or (prefix and str(item.get("description") or "").startswith(mark))]
    return sorted(found, key=lambda item: str(item.get("created_at") or item.get("id")))


def _create(conn: sdk_connection.Connection, collection: str, body: Json) -> Json:
    singular = COLLECTIONS[collection]
    return _clean(dict(_call(conn, "network", "POST", f"/vpn/{collection}", body={singular: body})[singular]))


def create_ike_policy(conn: sdk_connection.Connection, *, project_id: str, name: str, mark: str,
                      settings: Json) -> Json:
    """An IKE policy; ``settings``: auth_algorithm, encryption_algorithm, ike_version, pfs,
    phase1_negotiation_mode, lifetime (Neutron's defaults for what is left out)."""
    return _create(conn, "ikepolicies", {**settings, "name": name, "description": mark, "project_id": project_id})


def create_ipsec_policy(conn: sdk_connection.Connection, *, project_id: str, name: str, mark: str,
                        settings: Json) -> Json:
    """An IPsec policy; ``settings``: auth_algorithm, encryption_algorithm, pfs, transform_protocol,
    encapsulation_mode, lifetime."""
    return _create(conn, "ipsecpolicies", {**settings, "name": name, "description": mark, "project_id": project_id})


def create_vpn_service(conn: sdk_connection.Connection, *, project_id: str, name: str, mark: str,
                       router_id: str) -> Json:
    """A VPN service on the router (no subnet: connections name endpoint groups). Its
    ``external_v4_ip``/``external_v6_ip`` is the router's gateway: what peers connect to."""
    return _create(conn, "vpnservices", {"name": name, "description": mark, "project_id": project_id,
                                         "router_id": router_id, "subnet_id": None, "admin_state_up": True})


def create_endpoint_group(conn: sdk_connection.Connection, *, project_id: str, name: str, mark: str, kind: str,
                          endpoints: list[str]) -> Json:
    """An endpoint group: ``kind`` "subnet" (subnet ids, the local side) or "cidr" (the peer's CIDRs)."""
    return _create(conn, "endpoint-groups", {"name": name, "description": mark, "project_id": project_id,
                                             "type": kind, "endpoints": list(endpoints)})


def create_site_connection(conn: sdk_connection.Connection, *, project_id: str, name: str, mark: str,
                           vpnservice_id: str, ikepolicy_id: str, ipsecpolicy_id: str, local_ep_group_id: str,
                           peer_ep_group_id: str, peer_address: str, psk: str) -> Json:
    """An IPsec site connection to ``peer_address`` (its id is the address too), with the pre-shared
    key ``psk``; the answer never carries the key."""
    body = {"name": name, "description": mark, "project_id": project_id, "vpnservice_id": vpnservice_id,
            "ikepolicy_id": ikepolicy_id, "ipsecpolicy_id": ipsecpolicy_id, "local_ep_group_id": local_ep_group_id,
            "peer_ep_group_id": peer_ep_group_id, "peer_address": peer_address, "peer_id": peer_address, "psk": psk,
            "initiator": "bi-directional", "admin_state_up": True}
    return _clean(_keyed(conn, "POST", "/vpn/ipsec-site-connections", {"ipsec_site_connection": body}, psk))


def update_site_connection(conn: sdk_connection.Connection, connection_id: str, *, peer_address: str,
                           psk: str) -> Json | None:
    """Point the connection at a moved peer and set its key (a rotated key, a key that drifted).

    None when Neutron will not update it yet: a connection no VPN agent has taken up is
    ``PENDING_*``, and Neutron answers ``400 VPNStateInvalidToUpdate`` (a site without an agent, like
    the real test bed, answers so for ever): the caller replaces the connection instead."""
    body = {"peer_address": peer_address, "peer_id": peer_address, "psk": psk}
    try:
        return _clean(_keyed(conn, "PUT", f"/vpn/ipsec-site-connections/{connection_id}",
                             {"ipsec_site_connection": body}, psk))
    except SiteError as exc:
        if exc.status == 400 and PENDING_REFUSAL in exc.message:
            return None
        raise


def connection_has_key(conn: sdk_connection.Connection, connection_id: str, psk: str) -> bool:
    """Whether the connection's pre-shared key is ``psk`` (read, compared here, never returned)."""
    body = _call(conn, "network", "GET", f"/vpn/ipsec-site-connections/{connection_id}", missing_ok=True)
    return bool(body) and body["ipsec_site_connection"].get("psk") == psk


def delete(conn: sdk_connection.Connection, collection: str, ident: str) -> bool:
    """Delete one VPNaaS object (connections before what they use); False when it was gone."""
    return _call(conn, "network", "DELETE", f"/vpn/{collection}/{ident}", missing_ok=True) is not None
