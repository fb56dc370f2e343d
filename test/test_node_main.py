"""The executor every node process (and the in-process tests' spinner) runs on."""

import sys

import pytest
from rclpy.executors import SingleThreadedExecutor

from edge_tracker.core.errors import ConfigurationError
from edge_tracker.node_main import EXECUTOR_ENV, make_executor


def _has_events_executor() -> bool:
    try:
        from rclpy.experimental import EventsExecutor  # noqa: F401
    except ImportError:
        return False
    return True


def _kind(monkeypatch, choice) -> str:
    """'events' or 'single': what make_executor() builds for EDGE_TRACKER_EXECUTOR=choice
    (None: unset)."""
    if choice is None:
        monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    else:
        monkeypatch.setenv(EXECUTOR_ENV, choice)
    executor = make_executor()
    try:
        if type(executor).__name__ == 'EventsExecutor':
            return 'events'
        assert isinstance(executor, SingleThreadedExecutor), type(executor)
        return 'single'
    finally:
        executor.shutdown()


def test_auto_takes_the_events_executor_where_rclpy_has_it(ros_context, monkeypatch):
    assert _kind(monkeypatch, None) == ('events' if _has_events_executor() else 'single')


def test_single_keeps_the_wait_set_executor(ros_context, monkeypatch):
    assert _kind(monkeypatch, ' Single ') == 'single'


def test_an_rclpy_without_events_executor_falls_back_or_refuses(ros_context, monkeypatch):
    monkeypatch.setitem(sys.modules, 'rclpy.experimental', None)  # import fails, as on Jazzy
    assert _kind(monkeypatch, 'auto') == 'single'
    with pytest.raises(ConfigurationError, match='no EventsExecutor'):
        _kind(monkeypatch, 'events')


def test_an_unknown_choice_is_refused(ros_context, monkeypatch):
    with pytest.raises(ConfigurationError, match=EXECUTOR_ENV):
        _kind(monkeypatch, 'multi')
