"""What the tools that start the package's nodes as processes (eval, bench, soak) share."""

import os
from pathlib import Path
from typing import Optional


def isolate(domain_id: Optional[int] = None) -> int:
    """A DDS domain of our own on this host, with the transports sized for images, as the tests
    and launch files set them. Call before any participant exists."""
    from edge_tracker.core.launch_plan import fastdds_env
    from edge_tracker.paths import share_directory
    domain = domain_id if domain_id is not None else 1 + os.getpid() % 100
    os.environ['ROS_DOMAIN_ID'] = str(domain)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    for key, value in fastdds_env(share_directory()).items():
        os.environ.setdefault(key, value)
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
