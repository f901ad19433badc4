"""``skyfleet routing-domain mesh-show``'s KEY column tells a site holding an earlier key (old) from a
site that never held one (none: its first run is pending, or failed as on a site without VPNaaS)."""

from __future__ import annotations

from typing import Any

from skyfleet.cli.addresses import _mesh_rows


def site(name: str, *, current: bool, version: int | None) -> dict[str, Any]:
    return {"site_name": name, "status": "in-sync", "error": None, "address": None, "connections": {},
            "key_current": current, "key_version": version}


def test_key_column_says_current_old_or_none() -> None:
    body = {"sites": [site("a", current=True, version=2), site("b", current=False, version=1),
                      site("c", current=False, version=None)]}
    assert {r["site_name"]: r["key"] for r in _mesh_rows(body, "table")} == {"a": "current", "b": "old", "c": "none"}


def test_json_keeps_the_answer_as_it_is() -> None:
    body = {"sites": [site("c", current=False, version=None)]}
    assert _mesh_rows(body, "json") is body
