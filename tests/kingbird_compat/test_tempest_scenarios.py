"""Kingbird 1.3.0's tempest scenario tests (quota management, keypair, flavor, image and template
sync) through python-kingbirdclient against a live Skyfleet on three simulated regions (one Keystone).

Every test either passes or is one of the documented differences (``docs/kingbird.md``), each with
its reason; the counts are printed at the end of the run. The suite runs in its own interpreter
(see ``replay.run_in_subprocess``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kingbird_compat import replay, tempest_run


@pytest.mark.timeout(900)
def test_kingbird_tempest_scenarios_pass_against_skyfleet(tmp_path: Path, kingbird_reports: list[str]) -> None:
    outcome = replay.run_in_subprocess("tests.kingbird_compat.tempest_run", tmp_path, timeout=840)
    kingbird_reports.append(replay.report("Kingbird tempest scenario tests (quota management, keypair/flavor/"
                                          "image/template sync)", outcome, tempest_run.KNOWN_DIFFERENCES))
    unexpected = {name: why for name, why in outcome.failed.items() if name not in tempest_run.KNOWN_DIFFERENCES}
    assert unexpected == {}, "\n".join(f"{k}: {v}" for k, v in unexpected.items())
    assert len(outcome.passed) >= 43
