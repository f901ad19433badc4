"""Kingbird 1.3.0's API unit tests (``kingbird/tests/unit/api``), replayed over HTTP against Skyfleet.

Every test either passes, is one of the documented differences (``docs/kingbird.md``), or cannot
apply (it asserts on Kingbird's internals), each with its reason; the counts are printed at the end.
The suite runs in its own interpreter (see ``replay.run_in_subprocess``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kingbird_compat import replay


@pytest.mark.timeout(600)
def test_kingbird_unit_api_tests_pass_against_skyfleet(tmp_path: Path, kingbird_reports: list[str]) -> None:
    outcome = replay.run_in_subprocess("tests.kingbird_compat.replay", tmp_path, timeout=540)
    kingbird_reports.append(replay.report("Kingbird unit API tests (kingbird/tests/unit/api)", outcome,
                                          replay.KNOWN_DIFFERENCES))
    unexpected = {name: why for name, why in outcome.failed.items() if name not in replay.KNOWN_DIFFERENCES}
    assert unexpected == {}, "\n".join(f"{k}: {v}" for k, v in unexpected.items())
    assert len(outcome.passed) >= 45
