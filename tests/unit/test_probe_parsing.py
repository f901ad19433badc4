"""Version-discovery helpers of the site probe."""

from skyfleet.drivers.openstack.probe import _chosen_version, _discovery_url


def test_project_scoped_urls_are_trimmed_for_discovery() -> None:
    assert _discovery_url("http://c:8776/v3/abc123", "abc123") == "http://c:8776/v3/"
    assert _discovery_url("http://c:8776/v3/abc123/", "abc123") == "http://c:8776/v3/"
    assert _discovery_url("http://n:8774/v2.1", "abc123") == "http://n:8774/v2.1"
    assert _discovery_url("http://n:8774/v2.1", None) == "http://n:8774/v2.1"


def test_newest_current_version_is_chosen() -> None:
    versions = [
        {"version": (2, 0), "status": "SUPPORTED"},
        {"version": (2, 17), "status": "CURRENT", "max_microversion": None},
        {"version": (3, 0), "status": "EXPERIMENTAL"},
    ]
    assert _chosen_version(versions) == versions[1]
    assert _chosen_version([{"version": (1, 0), "status": "deprecated"}]) == {"version": (1, 0), "status": "deprecated"}
    assert _chosen_version([]) is None


def test_auth_keystoneauth_cannot_build_is_a_site_error_not_a_crash() -> None:
    from skyfleet.drivers.openstack.probe import probe_site

    result = probe_site({"auth_url": "http://127.0.0.1:9/v3", "username": "u", "password": "",
                         "project_name": "p"}, timeout=1)
    assert not result.reachable and result.error
