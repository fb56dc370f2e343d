"""The `main()` every node executable shares: start, spin, and stop cleanly on Ctrl-C, SIGTERM
or an external shutdown, with one clear message (and exit code 2) for a bad configuration."""

import logging
import os
import signal
import sys
from typing import Callable, List, Optional, Union

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node

from edge_tracker.core.allocator import keep_image_buffers
from edge_tracker.core.errors import CONFIGURATION_EXIT_CODE, ConfigurationError
from edge_tracker.core.launch_plan import apply_fastdds_env
from edge_tracker.paths import share_directory


def run(node_factory: Callable[[], Union[Node, List[Node]]],
        args: Optional[List[str]] = None) -> int:
    """Spins what `node_factory` makes (one node or several) until shutdown; returns the
    process exit code. Callbacks are short (capture and inference have threads of their own),
    so one executor thread serves them (all nodes of a process too): the multi-threaded
    executor's thread pool took ~40 % of a core in the tracker at 50 Hz, ~20 % with one, and
    starved inference of the GIL in the single-process pipeline."""
    # rclpy's own handlers (SIGINT and SIGTERM, Humble and later) shut the context down and wake
    # the executor at once. A Python SIGTERM handler would only run when the main thread next
    # executes bytecode (up to a timer period later) while worker threads still publish.
    share_the_interpreter()
    keep_image_buffers()
    # Read once, when the DDS participant is created: without it Fast DDS's default transports
    # lose most images larger than its 512 KB shared-memory segments between processes.
    apply_fastdds_env(share_directory())
    try:
        rclpy.init(args=args)
    except Exception as exc:  # RCLError: a malformed --ros-args remap or parameter file
        get_logger('edge_tracker').fatal(' '.join(str(exc).split()))
        return CONFIGURATION_EXIT_CODE
    nodes: List[Node] = []
    executor = None
    code = 0
    try:
        made = node_factory()
        nodes = made if isinstance(made, list) else [made]
        executor = make_executor()
        for node in nodes:
            executor.add_node(node)
        # spin_once in a loop, not spin(): rclpy 9.1's EventsExecutor.spin() ran no callback
        # here (and ignored shutdown); a shutdown raises ExternalShutdownException from either.
        while rclpy.ok():
            executor.spin_once(timeout_sec=1.0)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ConfigurationError as exc:
        name = nodes[0].get_name() if nodes else 'edge_tracker'
        # One line (journald, launch output): some library messages span several.
        rclpy.logging.get_logger(name).fatal(' '.join(str(exc).split()))
        code = CONFIGURATION_EXIT_CODE
    except Exception:
        # A signal shuts the context down under the executor: a take or wait already under
        # way then fails on the invalidated handles (RuntimeError, RCLError). The stop was
        # asked for; anything while the context is still up is a real error.
        if rclpy.ok():
            raise
    finally:
        # A second Ctrl-C or SIGTERM (a terminal and launch both signal a node) must not
        # interrupt the bounded clean-up with a KeyboardInterrupt traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for node in nodes:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
        leave_the_graph(executor)
    return code


def leave_the_graph(executor) -> None:
    """Deletes the DDS participant now, which tells every peer at once that this process's
    endpoints are gone. exit_now skips the interpreter's teardown that would do it, and then
    the others count them (a tracker its detector's announcements, say) until the
    participant's lease runs out: 20-37 s here. The context is only destroyed once no
    executor uses it."""
    try:
        if executor is not None:
            executor.shutdown()
        destroy = getattr(rclpy.utilities.get_default_context(), 'destroy', None)
        if destroy is not None:
            destroy()
    except Exception:
        pass   # best effort: the lease still ends it


EXECUTOR_ENV = 'EDGE_TRACKER_EXECUTOR'


def make_executor():
    """rclpy's EventsExecutor where this rclpy has it (Kilted and later), else the
    SingleThreadedExecutor. The wait-set executor rebuilds its wait set from every entity of
    its nodes on each wake-up: ~0.4 ms of CPU per message taken here, against ~0.2 ms when the
    middleware's events queue the callbacks. EDGE_TRACKER_EXECUTOR=single keeps the wait-set
    executor (the events one is still in rclpy.experimental)."""
    choice = os.environ.get(EXECUTOR_ENV, 'auto').strip().lower()
    if choice not in ('auto', 'events', 'single'):
        raise ConfigurationError(f'{EXECUTOR_ENV}={choice!r}: use auto, events or single')
    if choice == 'single':
        return SingleThreadedExecutor()
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        if choice == 'events':
            raise ConfigurationError(f'{EXECUTOR_ENV}=events: this rclpy has no '
                                     'EventsExecutor (Kilted and later have it)')
        return SingleThreadedExecutor()
    return EventsExecutor()


def share_the_interpreter() -> None:
    """Executor, capture and inference threads share one interpreter: hand the GIL over every
    0.5 ms instead of 5 ms, or each of an inference's many short Python steps waits a whole
    slice behind the other threads (measured: 1.9 s instead of 0.1 s per inference with all
    nodes in one process)."""
    sys.setswitchinterval(0.0005)


def steady_timer(node: Node, period_s: float, callback):
    """A timer on the steady clock for a node's own housekeeping (diagnostics, polling,
    deadlines). Under use_sim_time a node's default timers run on /clock and stop while none
    arrives (before a replay starts, while it is paused, after it ends)."""
    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


def main_for(node_class) -> Callable[[], None]:
    def main(args: Optional[List[str]] = None) -> None:
        exit_now(run(node_class, args))
    return main


def exit_now(code: int) -> None:
    """Ends the process once `run()` has shut ROS down, skipping the interpreter's teardown:
    with torch loaded that takes seconds (a stop must take less than 2 s), and a worker still
    inside an inference would abort it ("terminate called without an active exception")."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
