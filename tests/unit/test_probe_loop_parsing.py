"""The full probe on the audit's loop reads the catalog and version documents as keystoneauth does:
its in-place catalog reader and its remembered version parse give what keystoneauth's own calls give."""

from __future__ import annotations

from typing import Any

import pytest
from keystoneauth1 import access, discover

from skyfleet.drivers.openstack.audit_http import Answer
from skyfleet.drivers.openstack.probe import _catalog_urls, _chosen_version
from skyfleet.drivers.openstack.probe_loop import _PARSED, _catalog, _chosen, _failure, _Replay


def _token(catalog: list[dict[str, Any]]) -> access.AccessInfoV3:
    return access.AccessInfoV3(auth_token="t",
                               body={"token": {"catalog": catalog, "expires_at": "2999-01-01T00:00:00Z"}})


CATALOG = [
    {"type": "compute", "id": "1", "endpoints": [
        {"interface": "public", "region_id": "R1", "url": "http://c1/v2.1"},
        {"interface": "internal", "region_id": "R1", "url": "http://c1-int/v2.1"},
        {"interface": "public", "region": "R2", "url": "http://c2/v2.1"},
        {"interface": "public", "region_id": "R1", "url": ""}]},
    {"type": "volumev3", "name": "cinder", "endpoints": [
        {"interface": "public", "region_id": "R2", "url": "http://v2/v3/p"}]},
    {"name": "no type", "endpoints": [{"interface": "public", "url": "http://x"}]},
    {"type": "image"},
]


@pytest.mark.parametrize(("interface", "region"), [("public", "R1"), ("public", "R2"), ("publicURL", None),
                                                    ("internal", "R1"), ("admin", None), ("public", "R9")])
def test_the_catalog_read_in_place_is_keystoneauths(interface: str, region: str | None) -> None:
    ref = _token(CATALOG)
    assert _catalog(ref, interface, region) == _catalog_urls(ref.service_catalog, interface, region)


DOCUMENTS: list[Any] = [
    {"versions": [{"id": "v2.0", "status": "SUPPORTED", "links": [{"rel": "self", "href": "http://n/v2/"}]},
                  {"id": "v2.1", "status": "CURRENT", "version": "2.100", "min_version": "2.1",
                   "links": [{"rel": "self", "href": "http://n/v2.1/"}]}]},
    {"versions": {"values": [{"id": "v3.14", "status": "stable", "links": [{"rel": "self", "href": "/v3/"}]}]}},
    {"version": {"id": "v3.0", "status": "CURRENT", "min_version": "3.0", "max_version": "3.70",
                 "links": [{"rel": "self", "href": "http://v/v3/"}]}},
    {"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "collection", "href": "http://x/"}]}]},
    {"versions": [{"id": "v1.0", "status": "CURRENT", "links": [{"rel": "self", "href": "http://g/v1/"}]},
                  {"id": "v2.16", "status": "CURRENT", "links": [{"rel": "self", "href": "http://g/v2/"}]}]},
    {"versions": [{"id": "v1.0", "status": "CURRENT", "links": [{"rel": "self", "href": "http://g/v1/"}]},
                  {"id": "v2.16", "status": "CURRENT", "links": []}]},
    {"versions": [{"links": [{"rel": "self", "href": "http://x"}], "id": "v1.0"}]},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_remembered_version_parse_is_keystoneauths(document: dict[str, Any]) -> None:
    expected = _chosen_version(discover.Discover(_Replay(document), "http://site/x").version_data())
    want = None if expected is None else (expected["version"], expected["min_microversion"],
                                          expected["max_microversion"])
    _PARSED.clear()
    assert _chosen(document, "http://site/x") == want  # parsed
    assert _chosen(document, "http://other/x") == want  # remembered
    assert _PARSED


def test_an_unreadable_document_raises_as_keystoneauth_does_and_is_not_remembered() -> None:
    _PARSED.clear()
    with pytest.raises(discover.exceptions.DiscoveryFailure):
        _chosen({"unexpected": True}, "http://x")
    assert not _PARSED


def test_failures_are_named_as_keystoneauth_names_them() -> None:
    assert _failure(Answer(401, None, 0.0), unparsable="x") == "authentication failed (401 Unauthorized)"
    assert _failure(Answer(503, None, 0.0), unparsable="x") == "HTTP 503 (ServiceUnavailable)"
    assert _failure(Answer(599, None, 0.0), unparsable="x") == "HTTP 599 (HttpServerError)"
    assert _failure(Answer(None, None, 0.0, "request timed out"), unparsable="x") == "cannot connect: ConnectTimeout"
    assert _failure(Answer(None, None, 0.0, "cannot connect: ClientConnectorError"),
                    unparsable="x") == "cannot connect: ConnectFailure"
    assert _failure(Answer(200, None, 0.0, "not a JSON document"), unparsable="DiscoveryFailure") == "DiscoveryFailure"
    assert _failure(Answer(300, {"versions": []}, 0.0), unparsable="x") is None
