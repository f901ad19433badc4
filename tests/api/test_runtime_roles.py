"""What a process runs: tasks and periodic jobs, or tasks only (`skyfleet worker --no-periodic`)."""

from __future__ import annotations

from collections.abc import Callable

from skyfleet.api.runtime import Runtime


def test_periodic_jobs_can_be_left_to_other_processes(runtime_factory: Callable[..., Runtime]) -> None:
    tasks_only = runtime_factory(None, None, periodic_jobs=False)
    tasks_only.start_workers(concurrency=2)
    assert tasks_only.scheduler is None and tasks_only.runner is not None
    both = runtime_factory(None, None)
    both.start_workers(concurrency=2)
    assert both.scheduler is not None and both.runner is not None
