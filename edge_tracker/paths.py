"""Where the installed package keeps its files."""

import os


def share_directory() -> str:
    """This package's share/ (launch, config, models), or the source tree when not installed."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory('edge_tracker')
    except Exception:  # a checkout on PYTHONPATH without colcon: use the source tree
        return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
