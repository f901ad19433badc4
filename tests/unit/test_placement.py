"""Placement decisions over seeded sites, inventory and quota, on SQLite and PostgreSQL: every reason
a site is excluded, each policy's order, spread's minimum, assignments of several servers, an
explicit availability zone, images present or copied, and a bounded number of queries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.inventory import service as inventory
from skyfleet.domains.placement import cache, service
from skyfleet.domains.placement.schemas import BootRequest, PlacementPlan
from skyfleet.errors import Conflict, Invalid
from tests.placement_support import SMALL, add_site, declare_image, flavor, hypervisor, image, set_quota, zone

P = "p1"


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def boot(**placement: Any) -> BootRequest:
    count = placement.pop("count", 1)
    image_ref = placement.pop("image", "cirros")
    return BootRequest(name="vm", flavor="m1.small", image=image_ref, count=count, placement=placement)


def decide(factory: sessionmaker[Session], request: BootRequest, *, project_id: str | None = P,
           is_admin: bool = False) -> PlacementPlan:
    with transaction(factory) as session:
        return service.plan(session, project_id=project_id, is_admin=is_admin, request=request, now=utcnow())


def names(plan: PlacementPlan) -> list[str]:
    return [c.site_name for c in plan.candidates]


def assigned(plan: PlacementPlan) -> list[str]:
    by_id = {c.site_id: c.site_name for c in plan.candidates}
    return [by_id[a] for a in plan.assignments]


def room(servers: int) -> list[Any]:
    """One hypervisor with room for exactly ``servers`` m1.small (2 vCPU each; RAM and disk to spare)."""
    return [hypervisor(1, 2 * servers, 2048 * 100, 20 * 100)]


def test_every_reason_a_site_is_excluded(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        add_site(s, "a-ok")
        add_site(s, "b-offline", availability="offline")
        add_site(s, "c-no-flavor", flavors=[])
        add_site(s, "d-private-flavor", flavors=[flavor(SMALL, public=False)])
        add_site(s, "e-full", hypervisors=[hypervisor(1, 16, 32768, 400, used=(15, 0, 0))])
        add_site(s, "f-no-image", images=[])
        add_site(s, "g-hidden-image", images=[image("x", "cirros", owner="p2", visibility="private")])
        quota_site = add_site(s, "h-quota")
        absent_site = add_site(s, "i-absent")
        add_site(s, "j-everything", availability="unknown", flavors=[], images=[])
        add_site(s, "k-unknown-capacity", hypervisors=[])
        add_site(s, "l-degraded", availability="degraded")
        add_site(s, "m-unmanaged", managed=False)
        add_site(s, "n-private-flavor-shared", flavors=[flavor(SMALL, public=False, projects=(P,))])
        set_quota(s, P, limits={"cores": 100, "ram": 10**6, "instances": 50},
                  sites={quota_site: ({"cores": 9}, {"cores": 10}), absent_site: ({}, {})}, absent=(absent_site,))
    plan = decide(factory, boot())
    reasons = {e.site_name: e.reasons for e in plan.excluded}
    assert reasons == {
        "b-offline": ["site is offline"],
        "c-no-flavor": ["no flavor named 'm1.small' in the site's inventory"],
        "d-private-flavor": ["flavor 'm1.small' is private and the project has no access to it"],
        "e-full": ["no capacity for one m1.small: free vcpus 1 < 2"],
        "f-no-image": ["no image 'cirros' on the site"],
        "g-hidden-image": ["image 'cirros' is on the site but not visible to the project"],
        "h-quota": ["quota: cores 1 left < 2 for one server"],
        "i-absent": ["the project does not exist in the site's Keystone"],
        "j-everything": ["site is unknown (not probed yet)", "no flavor named 'm1.small' in the site's inventory",
                         "no image 'cirros' on the site"],
    }
    # pack: equal room, so by name; degraded and unknown capacity one tier down each (unknown room packs last)
    assert names(plan) == ["a-ok", "n-private-flavor-shared", "l-degraded", "k-unknown-capacity"]
    unknown = plan.candidates[3]
    assert unknown.free == {} and any("capacity unknown" in r for r in unknown.reasons)
    assert unknown.slots == 45  # bounded by the quota alone: 91 global cores left
    assert any("degraded" in r for r in plan.candidates[2].reasons)
    assert plan.flavor == {"name": "m1.small", "vcpus": 2, "ram": 2048, "disk": 20}
    ok = plan.candidates[0]
    assert ok.free == {"vcpus": 16, "ram_mb": 32768, "disk_gb": 400} and ok.slots == 8
    assert ok.image == "present" and ok.image_id == "img-a-ok" and ok.flavor_id == "f1"
    assert ok.quota_headroom == {"instances": 50, "cores": 91, "ram": 10**6}  # h-quota's 9 cores count globally
    assert plan.assignments == [ok.site_id] and plan.policy == "pack" and plan.problem is None


def test_fleet_admin_sees_private_flavors_and_images(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        add_site(s, "d-private-flavor", flavors=[flavor(SMALL, public=False)],
                 images=[image("x", "cirros", owner="p2", visibility="private")])
    assert names(decide(factory, boot(), project_id="admin-p", is_admin=True)) == ["d-private-flavor"]
    assert names(decide(factory, boot())) == []


def seed_rooms(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        add_site(s, "s2", hypervisors=room(2), labels={"tier": "edge"}, group="eu")
        add_site(s, "s5", hypervisors=room(5), labels={"tier": "edge"}, group="eu")
        add_site(s, "s10", hypervisors=room(10), labels={"tier": "core"}, group="us")


def test_pack_fills_the_fullest_site_first(factory: sessionmaker[Session]) -> None:
    seed_rooms(factory)
    plan = decide(factory, boot(count=4))
    assert names(plan) == ["s2", "s5", "s10"] and assigned(plan) == ["s2", "s2", "s5", "s5"]
    assert [c.slots for c in plan.candidates] == [2, 5, 10]
    assert plan.candidates[0].score > plan.candidates[1].score > plan.candidates[2].score
    assert plan.more_candidates == 0


def test_a_plan_lists_the_best_candidates_and_every_assigned_site(factory: sessionmaker[Session],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    seed_rooms(factory)
    monkeypatch.setattr(service, "MAX_CANDIDATES", 1)
    plan = decide(factory, boot(count=1))
    assert names(plan) == ["s2"] and plan.more_candidates == 2
    wide = decide(factory, boot(count=4))
    assert names(wide) == ["s2", "s5"] and wide.more_candidates == 1 and assigned(wide) == ["s2", "s2", "s5", "s5"]


def test_pack_reports_too_little_room(factory: sessionmaker[Session]) -> None:
    seed_rooms(factory)
    too_many = decide(factory, boot(count=18))
    assert too_many.assignments == [] and too_many.problem == "the candidates have room for 17 of the 18 servers"


def test_spread_round_robins_over_the_emptiest_sites(factory: sessionmaker[Session]) -> None:
    seed_rooms(factory)
    plan = decide(factory, boot(count=9, policy="spread", min_sites=3))
    assert names(plan) == ["s10", "s5", "s2"]
    assert assigned(plan) == ["s10", "s5", "s2", "s10", "s5", "s2", "s10", "s5", "s10"]  # s2 is full after two
    short = decide(factory, boot(count=4, policy="spread", min_sites=4))
    assert short.assignments == [] and short.problem == \
        "spread over at least 4 sites, but only 3 site(s) are candidates"
    few = decide(factory, boot(count=2, policy="spread", min_sites=3))
    assert few.assignments == [] and "needs at least 3 servers" in (few.problem or "")


def test_selector_and_group_narrow_the_candidates(factory: sessionmaker[Session]) -> None:
    seed_rooms(factory)
    assert names(decide(factory, boot(selector="tier=edge"))) == ["s2", "s5"]
    assert names(decide(factory, boot(group="us"))) == ["s10"]
    assert names(decide(factory, boot(selector="tier!=edge", group="eu"))) == []
    with pytest.raises(Invalid):
        decide(factory, boot(selector="tier=a b"))


def test_nearest_orders_by_great_circle_distance(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        add_site(s, "new-york", location=(40.71, -74.01))
        add_site(s, "nowhere")
        add_site(s, "lyon", location=(45.76, 4.84))
        add_site(s, "paris", location=(48.86, 2.35))
    plan = decide(factory, boot(policy="nearest", near={"latitude": 48.85, "longitude": 2.29}, count=2))
    assert names(plan) == ["paris", "lyon", "new-york", "nowhere"]
    assert "nearest: 394 km away" in plan.candidates[1].reasons
    assert any("no location" in r for r in plan.candidates[3].reasons)
    assert assigned(plan) == ["paris", "paris"]
    assert round(service.distance_km(48.86, 2.35, 40.71, -74.01)) == 5837


def test_weighted_prefers_the_lowest_label_and_excludes_sites_without_a_number(
        factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        add_site(s, "dear", labels={"cost": "3"})
        add_site(s, "cheap", labels={"cost": "0.5"})
        add_site(s, "words", labels={"cost": "cheap"})
        add_site(s, "unlabelled")
    plan = decide(factory, boot(policy="weighted", weight_label="cost"))
    assert names(plan) == ["cheap", "dear"]
    assert {e.site_name: e.reasons for e in plan.excluded} == {
        "words": ["label cost='cheap' is not a number (policy weighted)"],
        "unlabelled": ["no label 'cost' (policy weighted)"]}


def test_an_explicit_site_and_availability_zone(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        add_site(s, "paris", hypervisors=room(2), zones=[zone("az1"), zone("az2", available=False)])
        add_site(s, "lyon")
    plan = decide(factory, boot(site="paris", availability_zone="az1", count=2))
    assert names(plan) == ["paris"] and plan.policy == "explicit"
    assert plan.candidates[0].availability_zone == "az1" and assigned(plan) == ["paris", "paris"]
    down = decide(factory, boot(site="paris", availability_zone="az2"))
    assert down.excluded[0].reasons == ["availability zone 'az2' is not available"] and down.assignments == []
    missing = decide(factory, boot(site="paris", availability_zone="az9"))
    assert missing.excluded[0].reasons == ["no availability zone 'az9' (the site has az1)"]
    full = decide(factory, boot(site="paris", count=3))
    assert full.assignments == [] and full.problem == "the candidates have room for 2 of the 3 servers"
    spill = decide(factory, boot(site="paris", count=3, allow_spill=True))
    assert names(spill) == ["paris", "lyon"] and assigned(spill) == ["paris", "paris", "lyon"]
    nowhere = decide(factory, boot(site="atlantis"))
    assert nowhere.assignments == [] and nowhere.problem == "no site with id or name 'atlantis'"


def test_images_present_copied_or_missing(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        synced = add_site(s, "a-synced", images=[])
        add_site(s, "b-lazy", images=[])
        add_site(s, "c-outside", images=[])
        add_site(s, "d-by-name", images=[image("mine", "golden", owner=P, visibility="private")])
        declare_image(s, "golden", project_id=P, mode="lazy", in_sync={synced: "remote-1"},
                      placement={"sites": ["a-synced", "b-lazy"]})
        declare_image(s, "other-tenants", project_id="p2", mode="auto")
        declare_image(s, "catalogued", project_id=P, mode="none")
    plan = decide(factory, boot(image="golden"))
    by_name = {c.site_name: c for c in plan.candidates}
    assert (by_name["a-synced"].image, by_name["a-synced"].image_id) == ("present", "remote-1")
    assert (by_name["b-lazy"].image, by_name["b-lazy"].image_id) == ("copy", None)
    assert any("copied to the site before the boot" in r for r in by_name["b-lazy"].reasons)
    assert (by_name["d-by-name"].image, by_name["d-by-name"].image_id) == ("present", "mine")
    assert {e.site_name: e.reasons for e in plan.excluded} == {"c-outside": [
        "no image 'golden' on the site; declared image 'golden' (mode lazy) is not placed on the site"]}
    assert names(decide(factory, boot(image="other-tenants"))) == []  # another tenant's is no declared image here
    assert names(decide(factory, boot(image="catalogued"))) == []  # mode none copies nothing
    with transaction(factory) as s:
        declare_image(s, "golden", project_id="p3", mode="auto", visibility="public")
    assert names(decide(factory, boot(image="golden"))) == names(plan)  # its own wins over a public one
    public = decide(factory, boot(image="golden"), project_id="p4")  # only the public one, auto to every site
    assert {c.image for c in public.candidates} == {"copy"} and len(public.candidates) == 4
    with pytest.raises(Conflict):  # a fleet admin sees both and owns neither
        decide(factory, boot(image="golden"), project_id="admin-p", is_admin=True)


def test_global_quota_bounds_the_count(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s:
        one = add_site(s, "one")
        add_site(s, "two")
        set_quota(s, P, limits={"instances": 5, "cores": 100, "ram": 10**6},
                  sites={one: ({"instances": 2}, {"instances": -1})})
    plan = decide(factory, boot(count=3))
    assert plan.candidates[0].quota_headroom == {"instances": 3, "cores": 100, "ram": 10**6}
    assert len(plan.assignments) == 3
    over = decide(factory, boot(count=4))
    assert over.assignments == [] and over.problem == "the project's global quota leaves room for 3 of the 4 servers"
    with transaction(factory) as s:
        set_quota(s, "p9", limits={"instances": 0})
    nothing = decide(factory, boot(), project_id="p9")
    assert nothing.candidates == [] and all("quota: instances 0 left < 1" in e.reasons[0] for e in nothing.excluded)


def test_a_decision_costs_the_same_queries_for_3_or_30_sites(factory: sessionmaker[Session]) -> None:
    def statements() -> int:
        seen: list[str] = []
        engine = factory.kw["bind"]
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            decide(factory, boot(count=3, image="golden"))
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    with transaction(factory) as s:
        for n in range(3):
            add_site(s, f"s{n:02d}", labels={"n": str(n)})
        declare_image(s, "golden", project_id=P, mode="lazy")
        set_quota(s, P, limits={"cores": 1000})
    few = statements()
    with transaction(factory) as s:
        for n in range(3, 30):
            add_site(s, f"s{n:02d}", labels={"n": str(n)})
    assert statements() == few <= 16


def test_inventory_facts_are_reused_until_the_inventory_changes(factory: sessionmaker[Session]) -> None:
    """Capacity, flavors and images are read once and reused while the stored inventory is unchanged;
    an update, an insert or a deletion alone is seen by the very next decision."""
    with transaction(factory) as s:
        a = add_site(s, "a", hypervisors=room(1))
        add_site(s, "b", hypervisors=room(3))
    assert assigned(decide(factory, boot())) == ["a"]  # pack: the fuller site
    hits = cache.FACTS.hits
    assert assigned(decide(factory, boot())) == ["a"] and cache.FACTS.hits > hits  # nothing re-read

    def store(kind: str, records: list[Any]) -> None:
        with transaction(factory) as s:
            inventory.apply_records(s, site=inventory.SiteRef(a, "a"), kind=kind, records=records, now=utcnow(),
                                    complete=True, emit=False)

    store("hypervisors", [hypervisor(1, 2, 2048 * 100, 2000, used=(2, 0, 0))])  # an update: site a is full now
    plan = decide(factory, boot())
    assert assigned(plan) == ["b"] and "no capacity" in plan.excluded[0].reasons[0], plan.excluded
    store("hypervisors", room(1))
    assert assigned(decide(factory, boot())) == ["a"]
    store("flavors", [])  # a deletion alone: the row count is what changes
    assert [e.reasons for e in decide(factory, boot()).excluded] == [
        ["no flavor named 'm1.small' in the site's inventory"]]
    store("flavors", [flavor(SMALL)])  # an insert
    assert assigned(decide(factory, boot())) == ["a"]
