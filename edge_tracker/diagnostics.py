"""/diagnostics publishing shared by the nodes (diagnostic_updater is not available everywhere)."""

from typing import Callable, Dict, List, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from edge_tracker.node_main import steady_timer

# A task returns (level, message, values); level is one of edge_tracker.core.stats OK..STALE.
Task = Callable[[], Tuple[int, str, Dict[str, object]]]


def _format(value: object) -> str:
    if isinstance(value, float):
        return f'{value:.3f}'
    return str(value)


class Diagnostics:
    """Publishes one DiagnosticStatus per registered task on /diagnostics every `period_s`."""

    def __init__(self, node: Node, period_s: float = 1.0, hardware_id: str = '') -> None:
        self._node = node
        self._hardware_id = hardware_id
        self._tasks: List[Tuple[str, Task]] = []
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self._pub = node.create_publisher(DiagnosticArray, '/diagnostics', qos)
        # Published in machine time (rates are per second of it), stamped in the node's time.
        self._timer = steady_timer(node, period_s, self.publish)

    def add(self, name: str, task: Task) -> None:
        self._tasks.append((name, task))

    def publish(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        prefix = self._node.get_fully_qualified_name().lstrip('/')
        for name, task in self._tasks:
            try:
                level, message, values = task()
            except Exception as exc:  # a broken report must not take the node down
                level, message, values = 2, f'diagnostic task failed: {exc}', {}
            status = DiagnosticStatus()
            status.level = bytes([int(level)])
            status.name = f'{prefix}: {name}'
            status.message = message
            status.hardware_id = self._hardware_id
            status.values = [KeyValue(key=str(k), value=_format(v)) for k, v in values.items()]
            msg.status.append(status)
        self._pub.publish(msg)

