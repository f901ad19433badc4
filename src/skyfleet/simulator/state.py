"""In-memory state of the simulated fleet: sites, their keystones, and per-service resource tables.

Why it exists: the services are pure functions of this state, and tests reach in here (through
`Simulator.state`) to change resources behind Skyfleet's back. Everything is created lazily so that
10,000 idle sites cost a few hundred bytes each.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .faults import Faults, updated
from .imagedata import ImageData

Resource = dict[str, Any]

SERVICES = ("identity", "compute", "image", "network", "volume", "placement")
ADMIN_PASSWORD = "admin-secret"  # documented, predictable test credentials
DEMO_PASSWORD = "demo-secret"
HELD_KINDS = ("keypairs", "flavors", "security_groups")  # what Site.holds answers for


def new_id() -> str:
    return str(uuid.uuid4())


def hex_id() -> str:
    return uuid.uuid4().hex


def iso(ts: float | None, *, micro: bool = False, zulu: bool = True) -> str | None:
    """Timestamps the way the services print them (nova/neutron/glance: seconds+Z; cinder: micro)."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f" if micro else "%Y-%m-%dT%H:%M:%S")
    return text + ("Z" if zulu else "")


def parse_iso(text: str) -> float | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def public(resource: Resource) -> Resource:
    """A resource without its private ("_"-prefixed) bookkeeping keys."""
    return {k: v for k, v in resource.items() if not k.startswith("_")}


@dataclass(slots=True)
class Token:
    id: str
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: list[dict[str, str]]
    methods: list[str]
    issued: float
    expires: float
    audit_id: str
    system: bool = False
    domain_id: str | None = None
    app_cred_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return any(r["name"] == "admin" for r in self.roles)

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires


class KeystoneState:
    """One keystone: identity objects, tokens, and the regions (sites) it serves."""

    def __init__(self, leader: Site) -> None:
        self.leader = leader
        self.domains: dict[str, Resource] = {
            "default": {"id": "default", "name": "Default", "description": "The default domain",
                        "enabled": True, "tags": [], "options": {}}
        }
        self.projects: dict[str, Resource] = {}
        self.users: dict[str, Resource] = {}
        self.roles: dict[str, Resource] = {}
        self.assignments: set[tuple[str, str, str]] = set()  # (user_id, project_id, role_id)
        self.groups: dict[str, Resource] = {}
        self.members: set[tuple[str, str]] = set()  # (group_id, user_id)
        self.group_assignments: set[tuple[str, str, str]] = set()  # (group_id, project_id, role_id)
        # grants on domains, and inherited (OS-INHERIT) grants on domains or projects:
        # (target "domains"/"projects", target_id, actor "users"/"groups", actor_id, role_id, inherited)
        self.scoped_grants: set[tuple[str, str, str, str, str, bool]] = set()
        self.implied: set[tuple[str, str]] = set()  # (prior role id, implied role id): Keystone's role inferences
        self.app_creds: dict[str, Resource] = {}
        self.tokens: dict[str, Token] = {}
        self.services: dict[str, str] = {}  # service type -> id
        self.endpoint_ids: dict[tuple[str, str, str], str] = {}  # (region, type, interface) -> id
        self._catalog: list[Resource] | None = None
        for name in ("admin", "member", "reader", "service", "manager"):
            rid = hex_id()
            self.roles[rid] = {"id": rid, "name": name, "domain_id": None, "description": None,
                               "options": {"immutable": True} if name != "service" else {}}
        self.admin_project = self.add_project("admin", "Bootstrap project for initializing the cloud.")
        self.demo_project = self.add_project("demo", "")
        self.add_project("service", "")
        admin = self.add_user("admin", ADMIN_PASSWORD, None)
        demo = self.add_user("demo", DEMO_PASSWORD, self.demo_project)
        self.assignments.add((admin, self.admin_project, self.role_id("admin")))
        self.assignments.add((demo, self.demo_project, self.role_id("member")))
        self.assignments.add((demo, self.demo_project, self.role_id("reader")))

    @property
    def regions(self) -> list[Site]:
        return self.leader.group or [self.leader]

    def role_id(self, name: str) -> str:
        return str(next(r["id"] for r in self.roles.values() if r["name"] == name))

    def add_domain(self, name: str, description: str = "") -> str:
        did = hex_id()
        self.domains[did] = {"id": did, "name": name, "description": description, "enabled": True, "tags": [],
                             "options": {}}
        return did

    def add_project(self, name: str, description: str, domain_id: str = "default") -> str:
        pid = hex_id()
        self.projects[pid] = {"id": pid, "name": name, "domain_id": domain_id, "description": description,
                              "enabled": True, "parent_id": domain_id, "is_domain": False, "tags": [],
                              "options": {}}
        return pid

    def add_user(self, name: str, password: str | None, project: str | None, domain_id: str = "default") -> str:
        uid = hex_id()
        self.users[uid] = {"id": uid, "name": name, "domain_id": domain_id, "enabled": True,
                           "password_expires_at": None, "options": {}, "_password": password,
                           **({"default_project_id": project} if project else {})}
        return uid

    def project_by_name(self, name: str, domain_id: str = "default") -> Resource | None:
        return next((p for p in self.projects.values() if p["name"] == name and p["domain_id"] == domain_id),
                    None)

    def user_by_name(self, name: str, domain_id: str = "default") -> Resource | None:
        return next((u for u in self.users.values() if u["name"] == name and u["domain_id"] == domain_id), None)

    def domain_by_name(self, name: str) -> Resource | None:
        return next((d for d in self.domains.values() if d["name"] == name), None)

    def user_roles(self, user_id: str, project_id: str) -> list[dict[str, str]]:
        """The user's roles on the project: its own and those of its groups (as keystone's tokens)."""
        groups = {g for (g, u) in self.members if u == user_id}
        ids = {r for (u, p, r) in self.assignments if u == user_id and p == project_id}
        ids |= {r for (g, p, r) in self.group_assignments if g in groups and p == project_id}
        domain = (self.projects.get(project_id) or {}).get("domain_id")
        ids |= {r for (t, tid, a, aid, r, inherited) in self.scoped_grants
                if inherited and ((t == "domains" and tid == domain) or (t == "projects" and tid == project_id))
                and (aid == user_id if a == "users" else aid in groups)}
        return [{"id": r, "name": self.roles[r]["name"]} for r in sorted(ids) if r in self.roles]

    def domain_roles(self, user_id: str, domain_id: str) -> list[dict[str, str]]:
        """The user's roles on the domain itself (its own and its groups' direct grants; an inherited
        grant reaches the domain's projects, not the domain), as a domain-scoped token carries them."""
        groups = {g for (g, u) in self.members if u == user_id}
        ids = {r for (t, tid, a, aid, r, inherited) in self.scoped_grants
               if t == "domains" and tid == domain_id and not inherited
               and (aid == user_id if a == "users" else aid in groups)}
        return [{"id": r, "name": self.roles[r]["name"]} for r in sorted(ids) if r in self.roles]

    def token(self, token_id: str | None) -> Token | None:
        if not token_id:
            return None
        tok = self.tokens.get(token_id)
        if tok is None or tok.expired:
            return None
        user = self.users.get(tok.user_id)
        if user is None or not user["enabled"]:
            return None
        return tok

    def site_for_region(self, region: str) -> Site | None:
        return next((s for s in self.regions if s.region == region), None)


def _seed_flavors() -> dict[str, Resource]:
    from .nova_flavors import default_flavors

    return default_flavors()


@dataclass(slots=True)
class NovaState:
    flavors: dict[str, Resource] = field(default_factory=_seed_flavors)
    servers: dict[str, Resource] = field(default_factory=dict)
    deleted: dict[str, Resource] = field(default_factory=dict)
    keypairs: dict[tuple[str, str], Resource] = field(default_factory=dict)  # (user_id, name)
    quotas: dict[str, dict[str, int]] = field(default_factory=dict)
    hypervisor_id: str = field(default_factory=new_id)


@dataclass(slots=True)
class GlanceState:
    images: dict[str, Resource] = field(default_factory=dict)
    data: dict[str, ImageData] = field(default_factory=dict)


@dataclass(slots=True)
class NeutronState:
    networks: dict[str, Resource] = field(default_factory=dict)
    subnets: dict[str, Resource] = field(default_factory=dict)
    subnetpools: dict[str, Resource] = field(default_factory=dict)
    ports: dict[str, Resource] = field(default_factory=dict)
    routers: dict[str, Resource] = field(default_factory=dict)
    floatingips: dict[str, Resource] = field(default_factory=dict)
    security_groups: dict[str, Resource] = field(default_factory=dict)
    security_group_rules: dict[str, Resource] = field(default_factory=dict)
    quotas: dict[str, dict[str, int]] = field(default_factory=dict)
    ikepolicies: dict[str, Resource] = field(default_factory=dict)  # VPNaaS (neutron_vpn)
    ipsecpolicies: dict[str, Resource] = field(default_factory=dict)
    vpnservices: dict[str, Resource] = field(default_factory=dict)
    endpoint_groups: dict[str, Resource] = field(default_factory=dict)
    ipsec_site_connections: dict[str, Resource] = field(default_factory=dict)
    vpnaas: bool = True  # the site's Neutron offers the vpnaas extension
    vpn_agent: bool = True  # a VPN agent takes services and connections up (off: PENDING_CREATE for ever)
    next_segment: int = 1
    next_mac: int = 1


@dataclass(slots=True)
class CinderState:
    volumes: dict[str, Resource] = field(default_factory=dict)
    snapshots: dict[str, Resource] = field(default_factory=dict)
    quotas: dict[str, dict[str, int]] = field(default_factory=dict)


class Site:
    """One simulated OpenStack site (a region). Service state is created on first use."""

    __slots__ = (
        "_cinder",
        "_glance",
        "_keystone",
        "_neutron",
        "_nova",
        "boot_delay",
        "counters",
        "default_faults",
        "digest_only_images",
        "faults",
        "fleet_sites",
        "group",
        "keystone_leader",
        "name",
        "outcomes",
        "region",
    )

    def __init__(self, name: str, region: str = "RegionOne", *, keystone_leader: Site | None = None,
                 boot_delay: float = 0.0, default_faults: Faults | None = None,
                 digest_only_images: bool = False) -> None:
        self.name = name
        self.region = region
        self.keystone_leader: Site = keystone_leader or self
        self.boot_delay = boot_delay
        self.default_faults = default_faults
        self.faults: Faults | None = default_faults.copy() if default_faults else None
        self.digest_only_images = digest_only_images  # glance keeps an upload's size and hashes, not its bytes
        self.counters: Counter[tuple[str, str]] | None = None
        self.outcomes: Counter[tuple[str, str, int]] | None = None  # (method, path, status) answered
        self.group: list[Site] | None = None  # on a keystone leader: every region it serves
        self.fleet_sites: dict[str, Site] | None = None  # every site of the simulator (VPN peers)
        self._keystone: KeystoneState | None = None
        self._nova: NovaState | None = None
        self._glance: GlanceState | None = None
        self._neutron: NeutronState | None = None
        self._cinder: CinderState | None = None

    @property
    def keystone(self) -> KeystoneState:
        leader = self.keystone_leader
        if leader._keystone is None:
            leader._keystone = KeystoneState(leader)
        return leader._keystone

    @property
    def nova(self) -> NovaState:
        if self._nova is None:
            self._nova = NovaState()
        return self._nova

    @property
    def glance(self) -> GlanceState:
        if self._glance is None:
            self._glance = GlanceState()
        return self._glance

    @property
    def neutron(self) -> NeutronState:
        if self._neutron is None:
            self._neutron = NeutronState()
        return self._neutron

    @property
    def cinder(self) -> CinderState:
        if self._cinder is None:
            self._cinder = CinderState()
        return self._cinder

    def holds(self, kind: str, name: str) -> bool:
        """Whether this site has a ``kind`` (keypairs, flavors or security_groups) named ``name``, of any
        user or project. Keypairs and groups are read without creating a service's state."""
        if kind == "keypairs":
            return self._nova is not None and any(key[1] == name for key in self._nova.keypairs)
        if kind == "flavors":
            return any(flavor["name"] == name for flavor in self.nova.flavors.values())
        if kind == "security_groups":
            return self._neutron is not None and any(g["name"] == name for g in self._neutron.security_groups.values())
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(HELD_KINDS)}")

    def count(self, method: str, path: str) -> None:
        if self.counters is None:
            self.counters = Counter()
        self.counters[(method, path)] += 1

    def answered(self, method: str, path: str, status: int) -> None:
        if self.outcomes is None:
            self.outcomes = Counter()
        self.outcomes[(method, path, status)] += 1


class Fleet:
    """All sites served by one simulator process."""

    def __init__(self, *, regions_per_keystone: int = 1, boot_delay: float = 0.0, latency_ms: float = 0.0,
                 name_prefix: str = "site-", digest_only_images: bool = False) -> None:
        self.sites: dict[str, Site] = {}
        self.regions_per_keystone = max(1, regions_per_keystone)
        self.boot_delay = boot_delay
        self.default_faults = Faults(latency_ms=latency_ms) if latency_ms > 0 else None
        self.name_prefix = name_prefix
        self.digest_only_images = digest_only_images
        self.base_url = ""
        self._serial = 0

    def populate(self, count: int) -> None:
        leader: Site | None = None
        for i in range(count):
            if i % self.regions_per_keystone == 0:
                leader = None
            region = f"Region{_ordinal(i % self.regions_per_keystone + 1)}"
            site = self.add(None, region=region, leader=leader)
            if leader is None:
                leader = site

    def add(self, name: str | None = None, *, region: str = "RegionOne", leader: Site | None = None) -> Site:
        if name is None:
            while True:
                self._serial += 1
                name = f"{self.name_prefix}{self._serial:04d}"
                if name not in self.sites:
                    break
        if name in self.sites or not name or "/" in name or name.startswith("_"):
            raise ValueError(f"invalid or duplicate site name: {name!r}")
        site = Site(name, region, keystone_leader=leader, boot_delay=self.boot_delay,
                    default_faults=self.default_faults, digest_only_images=self.digest_only_images)
        if leader is not None:
            if leader.group is None:
                leader.group = [leader]
            leader.group.append(site)
            if leader._keystone is not None:
                leader._keystone._catalog = None
        site.fleet_sites = self.sites
        self.sites[name] = site
        return site

    def get(self, name: str) -> Site:
        try:
            return self.sites[name]
        except KeyError:
            raise KeyError(f"unknown site: {name}") from None


def _ordinal(n: int) -> str:
    words = ["One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten"]
    return words[n - 1] if n <= len(words) else str(n)


def set_faults(fleet: Fleet, name: str, changes: dict[str, Any]) -> Faults:
    site = fleet.get(name)
    site.faults = updated(site.faults, changes)
    return site.faults


def clear_faults(fleet: Fleet, name: str | None = None) -> None:
    for site in [fleet.get(name)] if name else list(fleet.sites.values()):
        site.faults = site.default_faults.copy() if site.default_faults else None
