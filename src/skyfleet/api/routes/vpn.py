"""/v1/routing-domains/{ref}/vpn: mesh a routing domain with site-to-site IPsec (Neutron VPNaaS) over
the sites of one declared network.

Why it exists: a declared network's per-site prefixes can route to one another only if something
carries the traffic between the sites' routers. Where the sites' Neutron has VPNaaS, Skyfleet builds
that through public APIs: IKE and IPsec policies, a VPN service on each site's router of the network,
and a connection between every pair of sites with one pre-shared key. The key is given once (or
generated), sealed at rest, and never shown again. The mesh is converged and audited like every
desired resource (``domains.networks.vpn``, kind ``vpn.mesh``); a site whose Neutron lacks VPNaaS gets
a failed binding that says so, and the others go on without it. A tenant meshes only its own routing
domain over its own network; a fleet admin any, within the network's project.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from skyfleet.api import access
from skyfleet.api.auth import Principal
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL
from skyfleet.api.routes.sync import caller_of
from skyfleet.db.base import utcnow
from skyfleet.db.engine import read_only, transaction
from skyfleet.domains.addresses import service as domains
from skyfleet.domains.addresses.models import RoutingDomain
from skyfleet.domains.networks import vpn
from skyfleet.domains.sync import converge as conv
from skyfleet.domains.sync import service
from skyfleet.domains.sync.models import DELETING, SyncBinding, SyncResource
from skyfleet.domains.sync.schemas import Placement, ResourceCreate
from skyfleet.domains.text import Name
from skyfleet.errors import Conflict, Invalid, NotFound, Unprocessable
from skyfleet.reconcile.kinds import validate_payload

router = APIRouter(prefix="/v1/routing-domains", tags=["addresses"], dependencies=CLEAN_URL)
Auth = Literal["sha1", "sha256", "sha384", "sha512"]
Encryption = Literal["aes-128", "aes-192", "aes-256", "3des"]
Pfs = Literal["group2", "group5", "group14", "group15", "group16", "group19", "group20", "group21"]


class IkePolicyIn(BaseModel):
    """Phase 1 (Neutron ``ikepolicy``); defaults stronger than Neutron's own (sha1, group5, IKEv1)."""

    model_config = ConfigDict(extra="forbid")

    auth_algorithm: Auth = "sha256"
    encryption_algorithm: Encryption = "aes-256"
    ike_version: Literal["v1", "v2"] = "v2"
    pfs: Pfs = "group14"
    lifetime: int = Field(3600, ge=60, le=86400, description="seconds")


class IpsecPolicyIn(BaseModel):
    """Phase 2 (Neutron ``ipsecpolicy``): ESP in tunnel mode."""

    model_config = ConfigDict(extra="forbid")

    auth_algorithm: Auth = "sha256"
    encryption_algorithm: Encryption = "aes-256"
    pfs: Pfs = "group14"
    lifetime: int = Field(3600, ge=60, le=86400, description="seconds")


class MeshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    network: Name | None = Field(None, min_length=1, max_length=255,
                                 description="a declared network (id or name); required")
    ike_policy: IkePolicyIn = Field(default_factory=IkePolicyIn)
    ipsec_policy: IpsecPolicyIn = Field(default_factory=IpsecPolicyIn)
    psk: SecretStr | None = Field(None, description="the pre-shared key (16-128 printable characters); "
                                                    "generated when absent; never shown again")


class MeshSite(BaseModel):
    site_name: str
    status: str
    error: str | None
    address: str | None = Field(None, description="the site's VPN service address (its router's gateway)")
    connections: dict[str, str] = Field(default_factory=dict, description="peer site -> Neutron status")
    key_current: bool = Field(False, description="every connection of the site holds the mesh's current key")
    key_version: int | None = Field(None, description="the key generation the site's last successful run set; "
                                    "null: the site never held a key of this mesh")


class MeshOut(BaseModel):
    routing_domain: str
    routing_domain_id: str
    network: str | None
    network_id: str | None
    state: str
    ike_policy: dict[str, Any] | None
    ipsec_policy: dict[str, Any] | None
    psk_set: bool
    key_version: int = Field(description="the key's generation: 1, then +1 per rotation")
    old_key_sites: list[str] = Field(description="sites not yet known to hold the current key")
    operation_id: str | None
    sites: list[MeshSite]
    updated_at: Any


def _policy(settings: BaseModel) -> dict[str, Any]:
    values = settings.model_dump()
    return {**values, "lifetime": {"units": "seconds", "value": values["lifetime"]}}


def _domain(session: Any, principal: Principal, ref: str) -> RoutingDomain:
    return domains.get(session, ref=ref, caller=domains.Caller(project_id=access.row_scope(principal)))


def _network(session: Any, principal: Principal, domain: RoutingDomain, ref: str) -> SyncResource:
    try:
        network = service.get(session, kind=vpn.NETWORK_KIND, ref=ref, caller=caller_of(principal))
    except NotFound:
        raise NotFound(f"network: no declared network {ref!r} of your project") from None
    if domain.project_id is not None and network.scope != domain.project_id:
        raise Invalid(f"network: {network.name!r} is not of the routing domain's project")
    return network


def _out(session: Any, resource: SyncResource, domain: RoutingDomain,
         bindings: dict[str, SyncBinding] | None = None) -> MeshOut:
    """The mesh as a user reads it (``bindings``: folded in a read that is never written)."""
    with session.no_autoflush:
        network = session.get(SyncResource, str(resource.spec.get("network_id")))
        found = bindings if bindings is not None else conv.bindings_of(session, resource)
        return MeshOut.model_validate(vpn.view(session, resource, domain, bindings=list(found.values()),
                                               network_name=network.name if network is not None else None))


def _checked_psk(given: SecretStr | None) -> str:
    """The caller's pre-shared key, or a new one; 400 with the reason when it is unfit."""
    psk = given.get_secret_value() if given is not None else vpn.new_psk()
    problem = vpn.check_psk(psk)
    if problem is not None:
        raise Invalid(problem)
    return psk


@router.post("/{ref}/vpn", status_code=status.HTTP_202_ACCEPTED, response_model=MeshOut)
def create_mesh(ref: str, body: MeshIn, runtime: RuntimeDep, principal: PrincipalDep) -> MeshOut:
    """Mesh the domain over the sites of a declared network (409 while it is on fewer than two sites in
    sync, or its routers have no gateway; 409 when the domain is meshed already)."""
    psk = _checked_psk(body.psk)
    now = utcnow()
    with transaction(runtime.factory) as session:
        domain = _domain(session, principal, ref)
        if body.network is None:  # checked after the domain: another tenant's domain is a 404 first
            raise Unprocessable("network: field required (a declared network, id or name)")
        if vpn.mesh_of(session, domain) is not None:
            raise Conflict(f"routing domain {domain.name!r} is meshed already; delete its mesh first")
        network = _network(session, principal, domain, body.network)
        site_ids = vpn.check_ready(session, network)
        spec = {"name": domain.id, "network_id": network.id, "ike_policy": _policy(body.ike_policy),
                "ipsec_policy": _policy(body.ipsec_policy)}
        validate_payload(service.TASK_KIND[vpn.KIND], spec)
        owner = network.owner
        caller = service.Caller(**{k: owner.get(k) for k in ("user_id", "user_name", "project_id", "project_name",
                                                             "user_domain_name", "project_domain_name")},
                                is_admin=bool(owner.get("is_admin")), real_user=bool(owner.get("real_user", True)))
        data = ResourceCreate(spec=spec, placement=Placement(sites=site_ids))
        resource = service.create(session, kind=vpn.KIND, data=data, spec=spec, caller=caller, now=now)
        resource.options = {**resource.options, "psk_box": runtime.box.encrypt({"psk": psk})}
        conv.converge(session, resource, now=now, user_id=principal.user_id)
        out = _out(session, resource, domain)
    runtime.wake()
    return out


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    psk: SecretStr | None = Field(None, description="the new pre-shared key (16-128 printable characters); "
                                                    "generated when absent; never shown again")


def _meshed(session: Any, principal: Principal, ref: str, *,
            for_update: bool = False) -> tuple[RoutingDomain, SyncResource]:
    """The caller's routing domain and its mesh; 404 when either is missing."""
    domain = _domain(session, principal, ref)
    resource = vpn.mesh_of(session, domain, for_update=for_update)
    if resource is None:
        raise NotFound(f"routing domain {domain.name!r} is not meshed")
    return domain, resource


@router.post("/{ref}/vpn/rotate-key", status_code=status.HTTP_202_ACCEPTED, response_model=MeshOut)
def rotate_key(ref: str, runtime: RuntimeDep, principal: PrincipalDep, body: RotateIn | None = None) -> MeshOut:
    """Give the mesh a new pre-shared key: every connection on every site is set to it (replaced where
    Neutron will not update it); ``old_key_sites`` lists the sites that do not hold it yet. 409 while the
    mesh is being deleted; 400 for a key that is too short, too long or not printable."""
    psk = _checked_psk(body.psk if body is not None else None)
    now = utcnow()
    with transaction(runtime.factory) as session:
        domain, resource = _meshed(session, principal, ref, for_update=True)
        if resource.state == DELETING:
            raise Conflict(f"the mesh of routing domain {domain.name!r} is being deleted")
        vpn.rotate(resource, runtime.box.encrypt({"psk": psk}))
        resource.updated_at = now
        conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
        out = _out(session, resource, domain)
    runtime.wake()
    return out


@router.get("/{ref}/vpn", response_model=MeshOut)
def show_mesh(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> MeshOut:
    """Each site's part of the mesh: status, VPN service address, each connection's status."""
    with read_only(runtime.factory) as session:
        domain, resource = _meshed(session, principal, ref)
        bindings = conv.fold(session, resource, now=utcnow())
        if resource in session.deleted:
            raise NotFound(f"routing domain {domain.name!r} is not meshed")
        return _out(session, resource, domain, bindings)


@router.delete("/{ref}/vpn", status_code=status.HTTP_202_ACCEPTED, response_model=MeshOut,
               responses={204: {"description": "Removed at once: it was on no site."}})
def delete_mesh(ref: str, runtime: RuntimeDep, principal: PrincipalDep) -> MeshOut | Response:
    """Remove the connections, VPN services, endpoint groups and policies Skyfleet made."""
    now = utcnow()
    with transaction(runtime.factory) as session:
        domain, resource = _meshed(session, principal, ref, for_update=True)
        resource.state, resource.updated_at = DELETING, now
        conv.converge(session, resource, now=now, user_id=principal.user_id, supersede=True)
        if resource in session.deleted:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        out = _out(session, resource, domain)
    runtime.wake()
    return out
