"""ROS test harness: an isolated DDS domain per run, nodes spun until a condition holds, and the
package's executables started as real processes with --ros-args."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import pytest

# Isolation before anything creates a DDS participant: a domain of our own, on this host only.
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
# Transports sized for images, as the launch files set them (config/fastdds_large_images.xml).
from edge_tracker.core.launch_plan import fastdds_env  # noqa: E402  (ROS-free)
for _key, _value in fastdds_env(str(Path(__file__).resolve().parents[1])).items():
    os.environ.setdefault(_key, _value)
os.environ.setdefault('YOLO_OFFLINE', '1')
os.environ.setdefault('YOLO_VERBOSE', 'False')
os.environ.setdefault('PYTHONUNBUFFERED', '1')

try:
    import rclpy
    import vision_msgs.msg  # noqa: F401
    from rclpy.node import Node
except ImportError as exc:  # never a skip: without ROS these tests prove nothing
    raise pytest.UsageError(
        f'ROS 2 is not importable ({exc}). Run the tests through `make test`, or '
        '`source scripts/env.sh` first (a sourced ROS distro with vision_msgs also works).')

from edge_tracker.node_main import make_executor  # noqa: E402
from edge_tracker.tools.procs import kill_group, spawn  # noqa: E402  (after the isolation)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'


def shared_video(name: str) -> Path:
    """A file from ../shared/data/videos; fails (never skips) with what is missing."""
    path = SHARED_DATA / 'videos' / name
    if not path.is_file():
        pytest.fail(f'this test needs the sample video {path} (shared/data beside the checkout)')
    return path


@pytest.fixture(scope='session')
def ros_context():
    rclpy.init()
    yield
    rclpy.try_shutdown()


class Spinner:
    """A test node with its own executor and helpers to wait for things on the graph."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # The executor the node processes run on (node_main.make_executor), so in-process
        # tests of a node see the same callbacks and timers.
        self.executor = make_executor()
        self.executor.add_node(node)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, end - time.monotonic())))

    def until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Spins until `predicate()` holds; fails the test after `timeout` seconds."""
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                pytest.fail(f'timed out after {timeout:.0f} s waiting for {what}')
            self.executor.spin_once(timeout_sec=0.05)

    def collect(self, msg_type, topic: str, qos=10) -> List:
        """Subscribes and returns the list the messages are appended to."""
        received: List = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture
def spinner(ros_context, request):
    name = 'test_' + ''.join(c if c.isalnum() else '_' for c in request.node.name)[:60]
    s = Spinner(rclpy.create_node(name))
    yield s
    s.close()


def package_executable(name: str) -> str:
    from ament_index_python.packages import get_package_prefix
    path = Path(get_package_prefix('edge_tracker')) / 'lib' / 'edge_tracker' / name
    if not path.is_file():
        pytest.fail(f'{path} is missing: build the package (make env) first')
    return str(path)


def _yaml_value(value) -> str:
    import yaml
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()


class NodeProcess:
    def __init__(self, popen: subprocess.Popen, log_path: Path, label: str) -> None:
        self.popen = popen
        self.log_path = log_path
        self.label = label

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors='replace')
        except OSError:
            return ''

    def stop(self, sig: int = signal.SIGINT, timeout: float = 5.0) -> Optional[int]:
        """Signals the process and waits; returns its exit code (None if it had to be killed)."""
        if self.popen.poll() is not None:
            return self.popen.returncode
        self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.popen)
            self.popen.wait()
            return None


class Processes:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: List[NodeProcess] = []

    def start(self, executable: str, params: Optional[Dict] = None,
              remaps: Optional[Dict[str, str]] = None, name: Optional[str] = None,
              namespace: Optional[str] = None, params_file: Optional[str] = None,
              extra_args: Optional[List[str]] = None,
              env: Optional[Dict[str, str]] = None,
              args: Optional[List[str]] = None,
              unset_env: Sequence[str] = ()) -> NodeProcess:
        """`args` go before --ros-args (the executable's own), `extra_args` after it;
        `unset_env` names variables the process must not inherit."""
        cmd = [package_executable(executable)] if '/' not in executable else [executable]
        cmd += (args or []) + ['--ros-args']
        if name:
            cmd += ['-r', f'__node:={name}']
        if namespace:
            cmd += ['-r', f'__ns:={namespace}']
        for src, dst in (remaps or {}).items():
            cmd += ['-r', f'{src}:={dst}']
        if params_file:
            cmd += ['--params-file', params_file]
        for key, value in (params or {}).items():
            cmd += ['-p', f'{key}:={_yaml_value(value)}']
        cmd += extra_args or []
        label = name or executable
        log_path = self.tmp_path / f'{label}-{len(self.started)}.log'
        full_env = dict(os.environ, **(env or {}))
        for key in unset_env:
            full_env.pop(key, None)
        with open(log_path, 'wb') as log:
            popen = spawn(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
        proc = NodeProcess(popen, log_path, label)
        self.started.append(proc)
        return proc

    def python(self, code: str, label: str = 'script',
               args: Optional[List[str]] = None) -> NodeProcess:
        """Runs a Python snippet as another process (for stand-in publishers); `args` become
        its sys.argv[1:]."""
        log_path = self.tmp_path / f'{label}-{len(self.started)}.log'
        with open(log_path, 'wb') as log:
            popen = spawn([sys.executable, '-c', code] + (args or []), stdout=log,
                          stderr=subprocess.STDOUT)
        proc = NodeProcess(popen, log_path, label)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


@pytest.fixture
def processes(tmp_path, request):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()
    report = getattr(request.node, 'rep_call', None)
    if report is not None and report.failed:
        for proc in procs.started:
            sys.stderr.write(f'\n----- log of {proc.label} (exit {proc.popen.returncode}) -----\n')
            sys.stderr.write(proc.log()[-6000:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, 'rep_' + rep.when, rep)


def pytest_sessionfinish(session, exitstatus):
    """Nodes that tests kill on purpose (SIGKILL) leave Fast DDS's shared-memory files; a
    day of test runs filled /dev/shm with gigabytes of them."""
    from edge_tracker.tools.procs import clean_shared_memory
    clean_shared_memory()
