"""``sync.security_group``: converge one desired security group in one site (ensure or delete).

The group lives in the owning project mapped onto the site (the site credential's project when no
project is given). Rules are compared as a set of (direction, ethertype, protocol, ports, remote);
a rule's ``remote_group`` names a group of the same project and is resolved to that group's own id
in this site (itself included). Neutron's two default egress rules are part of the desired set
unless ``default_egress`` is false. Missing rules are added and extra ones removed, but only on a
group Skyfleet created (or with ``force``). A create is recorded on the task before the call, so
a group found after a crash (perhaps still missing rules) is known to be Skyfleet's and completed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.domains.text import Name, Text
from skyfleet.drivers.openstack import syncapi
from skyfleet.errors import TemporarySiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register
from skyfleet.reconcile.kinds.sync_common import (
    IdentityRef,
    SyncPayload,
    create_intent,
    created_earlier,
    refuse,
    site_project,
    verdict,
)

RuleKey = tuple[str, str, str | None, int | None, int | None, str | None, str | None]
ANY_CIDR = {"0.0.0.0/0", "::/0"}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: Literal["ingress", "egress"] = "ingress"
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: Name | None = Field(None, max_length=32)
    port_range_min: int | None = Field(None, ge=0, le=65535)
    port_range_max: int | None = Field(None, ge=0, le=65535)
    remote_ip_prefix: Name | None = Field(None, max_length=64)
    remote_group: Name | None = Field(None, max_length=255, description="name of a group of the same project")


class SecurityGroupSync(SyncPayload):
    name: Name = Field(min_length=1, max_length=255)
    description: Text = Field("", max_length=255)
    rules: list[Rule] = Field(default_factory=list, max_length=1000)
    default_egress: bool = True
    project: IdentityRef | None = None


def _proto(value: Any) -> str | None:
    text = str(value).lower() if value not in (None, "") else None
    return None if text in (None, "any") else text


def _key(direction: str, ethertype: str, protocol: Any, pmin: Any, pmax: Any, prefix: Any,
         group: Any) -> RuleKey:
    return (direction, ethertype, _proto(protocol), pmin, pmax,
            None if prefix in (None, "") or prefix in ANY_CIDR else str(prefix), group or None)


def desired_rules(ctx: SiteContext, p: SecurityGroupSync, project_id: str, own_id: str | None) -> dict[RuleKey, Rule]:
    rules = list(p.rules)
    if p.default_egress:
        rules += [Rule(direction="egress", ethertype="IPv4"), Rule(direction="egress", ethertype="IPv6")]
    out: dict[RuleKey, Rule] = {}
    for rule in rules:
        group_id = None
        if rule.remote_group == p.name:
            group_id = own_id or "@self"
        elif rule.remote_group:
            other = syncapi.find_security_group(ctx.connection(), rule.remote_group, project_id)
            if other is None:
                raise TemporarySiteError(f"remote group {rule.remote_group!r} is not in this site yet")
            group_id = other["id"]
        out[_key(rule.direction, rule.ethertype, rule.protocol, rule.port_range_min, rule.port_range_max,
                 rule.remote_ip_prefix, group_id)] = rule
    return out


def listed_drift(p: SecurityGroupSync, group: dict[str, Any] | None, groups: dict[str, dict[str, Any]]) -> bool:
    """Whether ``group`` (as a listing of its project's ``groups`` shows it) differs from ``p``: gone,
    renamed, another description, or another rule set (a ``remote_group`` is looked up by name in the
    same listing; one that is not there counts as drift, left for the task to report)."""
    if group is None or group.get("name") != p.name or (group.get("description") or "") != p.description:
        return True
    by_name = {g.get("name"): str(g["id"]) for g in groups.values()}
    rules = list(p.rules)
    if p.default_egress:
        rules += [Rule(direction="egress", ethertype="IPv4"), Rule(direction="egress", ethertype="IPv6")]
    want = set()
    for rule in rules:
        remote = str(group["id"]) if rule.remote_group == p.name else by_name.get(rule.remote_group) \
            if rule.remote_group else None
        if rule.remote_group and remote is None:
            return True
        want.add(_key(rule.direction, rule.ethertype, rule.protocol, rule.port_range_min, rule.port_range_max,
                      rule.remote_ip_prefix, remote))
    have = {_key(r["direction"], r["ethertype"], r.get("protocol"), r.get("port_range_min"), r.get("port_range_max"),
                 r.get("remote_ip_prefix"), r.get("remote_group_id")) for r in group.get("security_group_rules", [])}
    return want != have


def observe(ctx: SiteContext, p: SecurityGroupSync) -> dict[str, Any]:
    project_id = site_project(ctx, p.project, site_scope=p.site_scope)
    found = syncapi.find_security_group(ctx.connection(), p.name, str(project_id))
    seen: dict[str, Any] = {"found": found, "action": p.action, "project_id": project_id,
                            "may_delete": p.owned or p.purge or ctx.created_before,
                            "created_before": ctx.created_before}
    if found is None or p.action == "delete":
        return seen
    want = desired_rules(ctx, p, str(project_id), found["id"])
    have = {_key(r["direction"], r["ethertype"], r.get("protocol"), r.get("port_range_min"),
                 r.get("port_range_max"), r.get("remote_ip_prefix"), r.get("remote_group_id")): r["id"]
            for r in found.get("security_group_rules", [])}
    seen["add"] = [list(k) for k in want if k not in have]
    seen["remove"] = sorted(rid for k, rid in have.items() if k not in want)
    seen["description"] = (found.get("description") or "") != p.description
    return seen


def diff(p: SecurityGroupSync, seen: dict[str, Any]) -> Plan | None:
    found = seen["found"]
    if p.action == "delete":
        return {"delete": found["id"]} if found is not None and seen["may_delete"] else None
    if found is None:
        return {"create": True, "project_id": seen["project_id"]}
    if not (seen["add"] or seen["remove"] or seen["description"]):
        return None
    if not (p.owned or p.force or seen["created_before"]):
        raise refuse("security group", p.name, f"{len(seen['add'])} rule(s) missing, "
                     f"{len(seen['remove'])} extra, description {'differs' if seen['description'] else 'same'}")
    return {"repair": found["id"], "add": seen["add"], "remove": seen["remove"],
            "description": seen["description"], "project_id": seen["project_id"],
            "created_before": seen["created_before"]}


def _rule_body(group_id: str, key: list[Any]) -> dict[str, Any]:
    direction, ethertype, protocol, pmin, pmax, prefix, remote = key
    body = {"security_group_id": group_id, "direction": direction, "ethertype": ethertype,
            "protocol": protocol, "port_range_min": pmin, "port_range_max": pmax,
            "remote_ip_prefix": prefix, "remote_group_id": group_id if remote == "@self" else remote}
    return {k: v for k, v in body.items() if v is not None}


def apply(ctx: SiteContext, p: SecurityGroupSync, plan: Plan) -> dict[str, Any]:
    conn = ctx.connection()
    if "delete" in plan:
        syncapi.delete_security_group(conn, plan["delete"])
        return verdict("deleted", remote_id=None)
    if "create" in plan:
        group = syncapi.create_security_group(conn, name=p.name, description=p.description,
                                              project_id=str(plan["project_id"]))
        want = desired_rules(ctx, p, str(plan["project_id"]), group["id"])
        have = {_key(r["direction"], r["ethertype"], r.get("protocol"), r.get("port_range_min"),
                     r.get("port_range_max"), r.get("remote_ip_prefix"), r.get("remote_group_id")): r["id"]
                for r in group.get("security_group_rules", [])}
        for key, rid in have.items():
            if key not in want:
                syncapi.delete_rule(conn, rid)
        for key in want:
            if key not in have:
                syncapi.create_rule(conn, _rule_body(group["id"], list(key)))
        return verdict("in-sync", remote_id=group["id"], created=True, detail="created",
                       project_id=str(plan["project_id"]))
    gid = plan["repair"]
    if plan["description"]:
        syncapi.update_security_group(conn, gid, description=p.description)
    for rid in plan["remove"]:
        syncapi.delete_rule(conn, rid)
    for key in plan["add"]:
        syncapi.create_rule(conn, _rule_body(gid, key))
    return verdict("in-sync", remote_id=gid, detail=f"repaired: +{len(plan['add'])} -{len(plan['remove'])} rules",
                   created=bool(plan.get("created_before")), project_id=str(plan["project_id"]))


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    found = seen["found"]
    if seen["action"] == "delete":
        return verdict("absent" if found is None else "kept", remote_id=None,
                       detail="" if found is None else "not created by Skyfleet; kept (use purge)")
    return verdict("in-sync", remote_id=found["id"], project_id=str(seen["project_id"]), **created_earlier(seen))


KIND = register(TaskKind(name="sync.security_group", description="Converge a desired security group in one site.",
                         payload=SecurityGroupSync, observe=observe, diff=diff, apply=apply, summary=summary,
                         intent=create_intent, persistent=True))
