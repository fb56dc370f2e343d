"""What the tools that start the package's nodes as processes (eval, bench, soak) share."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence


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


class Child:
    """A started executable with its output in a log file; stopped with SIGINT, killed if it
    does not end. A session of its own: a Ctrl-C in the tool's terminal reaches it only
    through stop_all()."""

    def __init__(self, label: str, cmd: List[str], log_path: str) -> None:
        self.label = label
        self.log_path = log_path
        with open(log_path, 'wb') as log:
            self.popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)

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
            child.popen.kill()
            child.popen.wait()
            codes.append(None)
    return codes


def rss_kb(pid: int) -> Optional[int]:
    """Resident memory of one process (None once it is gone)."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


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
