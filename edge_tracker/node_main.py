"""The `main()` every node executable shares: start, spin, and stop cleanly on Ctrl-C, SIGTERM
or an external shutdown, with one clear message (and exit code 2) for a bad configuration."""

import signal
import sys
from typing import Callable, List, Optional

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from edge_tracker.core.errors import ConfigurationError


def run(node_factory: Callable[[], Node], args: Optional[List[str]] = None,
        threads: int = 2) -> int:
    rclpy.init(args=args)
    # rclpy handles SIGINT; SIGTERM (what launch and systemd send) should end the same way.
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node = None
    code = 0
    try:
        node = node_factory()
        executor = MultiThreadedExecutor(num_threads=threads)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ConfigurationError as exc:
        name = node.get_name() if node is not None else 'edge_tracker'
        rclpy.logging.get_logger(name).fatal(str(exc))
        code = 2
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def main_for(node_class) -> Callable[[], None]:
    def main(args: Optional[List[str]] = None) -> None:
        sys.exit(run(node_class, args))
    return main
