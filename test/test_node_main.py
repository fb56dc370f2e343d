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


def _is_events(executor) -> bool:
    return type(executor).__name__ == 'EventsExecutor'


def test_auto_takes_the_events_executor_where_rclpy_has_it(ros_context, monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    executor = make_executor()
    try:
        assert _is_events(executor) == _has_events_executor()
        assert _is_events(executor) or isinstance(executor, SingleThreadedExecutor)
    finally:
        executor.shutdown()


def test_single_keeps_the_wait_set_executor(ros_context, monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, ' Single ')
    executor = make_executor()
    try:
        assert isinstance(executor, SingleThreadedExecutor)
    finally:
        executor.shutdown()


def test_an_rclpy_without_events_executor_falls_back_or_refuses(ros_context, monkeypatch):
    monkeypatch.setitem(sys.modules, 'rclpy.experimental', None)  # import fails, as on Jazzy
    monkeypatch.setenv(EXECUTOR_ENV, 'auto')
    executor = make_executor()
    try:
        assert isinstance(executor, SingleThreadedExecutor)
    finally:
        executor.shutdown()
    monkeypatch.setenv(EXECUTOR_ENV, 'events')
    with pytest.raises(ConfigurationError, match='no EventsExecutor'):
        make_executor()


def test_an_unknown_choice_is_refused(ros_context, monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, 'multi')
    with pytest.raises(ConfigurationError, match=EXECUTOR_ENV):
        make_executor()
