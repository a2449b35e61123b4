"""The stop switch and record budget the source consults before claiming a record."""

from __future__ import annotations

from pipelines.run_control import RunControl


def test_budget_stops_after_the_last_record() -> None:
    control = RunControl()
    control.reset(max_records=3)
    for _ in range(2):
        control.take()
        assert not control.stopping()
    control.take()
    assert control.stopping()


def test_unlimited_until_stopped_and_reset_clears() -> None:
    control = RunControl()
    control.reset()
    for _ in range(1000):
        control.take()
    assert not control.stopping()
    control.stop()
    assert control.stopping()
    control.reset()
    assert not control.stopping()
    control.reset(max_records=0)
    assert control.stopping()
