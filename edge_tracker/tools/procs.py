"""What the tools that start the package's nodes as processes (eval, bench, soak, the tests)
share, and the one place child processes are started: every child dies with its parent."""

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from edge_tracker.core.lifetime import die_with
from edge_tracker.core.stats import rss_kb  # noqa: F401  (the tools read RSS from here)


def isolate(domain_id: Optional[int] = None) -> int:
    """A DDS domain of our own on this host, with the transports sized for images, as the tests
    and launch files set them. Call before any participant exists."""
    from edge_tracker.core.launch_plan import apply_fastdds_env
    from edge_tracker.paths import share_directory
    domain = domain_id if domain_id is not None else 1 + os.getpid() % 100
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    apply_fastdds_env(share_directory())
    os.environ.setdefault('YOLO_OFFLINE', '1')
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    return domain


def process_tree(pid: int) -> List[int]:
    """`pid` and its descendants (a detector's inference processes)."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f'/proc/{pids[i]}/task').glob('*/children'):
            try:
                pids += [int(c) for c in task.read_text().split()]
            except (OSError, ValueError):
                pass
        i += 1
    return pids


def tree_rss_kb(pid: int) -> Optional[int]:
    """RSS of a process and its descendants in kB (None once the process itself is gone)."""
    own = rss_kb(pid)
    if own is None:
        return None
    return own + sum(rss_kb(p) or 0 for p in process_tree(pid)[1:])


def executable(name: str) -> str:
    """Path of one of this package's executables (what `ros2 run` would start)."""
    from ament_index_python.packages import get_package_prefix
    path = Path(get_package_prefix('edge_tracker')) / 'lib' / 'edge_tracker' / name
    if not path.is_file():
        raise SystemExit(f'{path} is missing: build the package (make env) first')
    return str(path)


PROJECT_MODEL = 'edge_tracker_shapes.pt'
FALLBACK_MODEL = 'yolov8n.yaml'   # random weights: the compute of yolov8n, no download


def default_model() -> str:
    """The project's model: installed under share/, else a source checkout's models/ (where
    training writes), else a stand-in of yolov8n's size."""
    from edge_tracker.paths import share_directory
    repo = Path(__file__).resolve().parents[2]
    for folder in (Path(share_directory()) / 'models', repo / 'models'):
        if (folder / PROJECT_MODEL).is_file():
            return str(folder / PROJECT_MODEL)
    return FALLBACK_MODEL


def node_command(name: str, params: Dict[str, object]) -> List[str]:
    """The command line of executable `name` with `-p key:=value` for each of `params`."""
    cmd = [executable(name), '--ros-args']
    for key, value in params.items():
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, str):
            text = json.dumps(value)   # quoted: a value like "1.5" stays a string
        else:
            text = str(value)
        cmd += ['-p', f'{key}:={text}']
    return cmd


# --- children that die with their parent --------------------------------------------------

_LIVE: 'weakref.WeakSet[subprocess.Popen]' = weakref.WeakSet()


def _die_with(parent: int) -> Callable[[], None]:
    def setup() -> None:   # runs in the child, after setsid, before exec
        die_with(parent)
    return setup


def spawn(cmd: Sequence[str], **popen_kwargs) -> subprocess.Popen:
    """subprocess.Popen for a child that must not outlive this process.

    The child leads a process group (and session) of its own, so a Ctrl-C in the tool's
    terminal reaches it only through its owner and kill_group() reaches its own children too.
    On Linux the kernel SIGKILLs it when this process ends in any way, SIGKILL and timeouts
    included (PR_SET_PDEATHSIG, kept across exec). The signal follows the thread that started
    the child: start children from the main thread or another that lives as long as they should.
    Elsewhere (no prctl) an exit handler kills the groups still running, which covers every end
    but SIGKILL."""
    popen = subprocess.Popen(list(cmd), start_new_session=True,
                             preexec_fn=_die_with(os.getpid()), **popen_kwargs)
    _LIVE.add(popen)
    return popen


def kill_group(popen: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signals the child's whole process group (it and anything it started)."""
    try:
        os.killpg(popen.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def clean_shared_memory(timeout: float = 30.0) -> Optional[str]:
    """Removes the shared-memory files (/dev/shm, one ~35 MB segment per participant with
    the project's Fast DDS profile) that processes killed without a chance to clean up left
    behind, with Fast DDS's own `fastdds shm clean` (it keeps those still in use). Returns its
    report, or None without the tool."""
    tool = shutil.which('fastdds')
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, 'shm', 'clean'], capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return ' '.join(done.stdout.split())


@atexit.register
def _kill_leftovers() -> None:
    for popen in list(_LIVE):
        if popen.poll() is None:
            kill_group(popen)


def run(cmd: Sequence[str], timeout: float, idle_timeout: Optional[float] = None,
        echo: Optional[Callable[[str], None]] = None,
        **popen_kwargs) -> subprocess.CompletedProcess:
    """Runs a command to its end with stdout and stderr merged into `stdout` (text), like
    subprocess.run; on `timeout` (seconds in all) or `idle_timeout` (seconds without a line of
    output: a tool that reports its progress is stuck, not slow) its process group is killed
    and subprocess.TimeoutExpired raised, with the output so far in its `output`."""
    popen = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                  bufsize=1, **popen_kwargs)
    lines: List[str] = []
    last = [time.monotonic()]

    def pump() -> None:
        for line in popen.stdout:
            lines.append(line)
            last[0] = time.monotonic()
            if echo is not None:
                echo(line)
    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    start = time.monotonic()
    try:
        while popen.poll() is None:
            now = time.monotonic()
            over = now - start > timeout
            stuck = idle_timeout is not None and now - last[0] > idle_timeout
            if over or stuck:
                kill_group(popen)
                popen.wait()
                reader.join(2.0)
                raise subprocess.TimeoutExpired(
                    list(cmd), timeout if over else idle_timeout, output=''.join(lines))
            time.sleep(0.1)
        reader.join(5.0)
    finally:
        if popen.poll() is None:
            kill_group(popen)
            popen.wait()
    return subprocess.CompletedProcess(list(cmd), popen.returncode, ''.join(lines), None)


class Child:
    """A started executable with its output in a log file; stopped with SIGINT, killed if it
    does not end; dies with this process (see spawn())."""

    def __init__(self, label: str, cmd: List[str], log_path: str,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.label = label
        self.log_path = log_path
        with open(log_path, 'wb') as log:
            self.popen = spawn(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return Path(self.log_path).read_text(errors='replace')[-chars:]
        except OSError:
            return ''


def stop_all(children: Sequence[Child], timeout: float = 10.0) -> List[Optional[int]]:
    """SIGINT to all at once (they stop in parallel), then whatever is left by `timeout` is
    killed; their exit codes (None: killed)."""
    for child in children:
        if child.alive():
            child.popen.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    codes: List[Optional[int]] = []
    for child in children:
        try:
            codes.append(child.popen.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            kill_group(child.popen)
            child.popen.wait()
            codes.append(None)
    return codes


def json_results(children: Sequence[Child], timeout: float, tool: str) -> List[Dict]:
    """Waits for children that each print one JSON line as their result (a tool's worker
    processes) and returns those, in order; every child ends with this call. Raises
    RuntimeError, with the child's log, for one that does not end or fails."""
    try:
        for child in children:
            try:
                child.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f'{tool}: {child.label} did not end:\n'
                                   f'{child.log_tail(1500)}') from None
    finally:
        stop_all(children, 5.0)
    out = []
    for child in children:
        lines = [line for line in Path(child.log_path).read_text(errors='replace').splitlines()
                 if line.startswith('{')]
        if child.popen.returncode != 0 or not lines:
            raise RuntimeError(f'{tool} {child.label} failed:\n{child.log_tail(1500)}')
        out.append(json.loads(lines[-1]))
    return out


class BackgroundSpinner:
    """An rclpy context of the tool's own, spun on a daemon thread, without rclpy's signal
    handlers (Ctrl-C stays a KeyboardInterrupt, so the tool's finally blocks stop its
    children)."""

    def __init__(self, domain_id: Optional[int] = None) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context, domain_id=domain_id,
                   signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
        self.executor = SingleThreadedExecutor(context=self.context)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:  # shutting down
                return

    def close(self) -> None:
        import rclpy
        rclpy.try_shutdown(context=self.context)
        self._thread.join(2.0)
