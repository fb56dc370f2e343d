"""What one message between two processes costs this machine, apart from any work on it.

    python -m edge_tracker.tools.message_cost [--hz 30] [--seconds 8]

A talker process publishes std_msgs/Header (reliable, as the detector's notices) to a
listener process, first paced at `--hz`, then the same number back to back. Each side reports
its own CPU per message (all its threads: the executor and the middleware's). The paced figure
is what a node pays per message at a camera's rate; the burst figure is the work itself, so
the difference is what waking up costs here. `edge_bench` prints the same figures beside its
glue: with several messages per camera frame, they set a floor under it.
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from typing import Dict, Optional

PACED, BURST, END = 'paced', 'burst', 'end'


def _node(name: str):
    import rclpy
    from edge_tracker.node_main import make_executor
    rclpy.init(args=[])
    node = rclpy.create_node(name, start_parameter_services=False)
    executor = make_executor()
    executor.add_node(node)
    return node, executor


def talk(hz: float, count: int, timeout_s: float) -> Dict[str, float]:
    from std_msgs.msg import Header

    from edge_tracker.qos import notice_qos
    node, executor = _node('message_cost_talker')
    pub = node.create_publisher(Header, 'message_cost', notice_qos())
    deadline = time.monotonic() + timeout_s
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            raise SystemExit('message_cost: no listener appeared')
        time.sleep(0.05)
    time.sleep(1.0)   # the listener's reliable reader fully matched
    msg = Header()

    def send(kind: str) -> None:
        msg.frame_id = kind
        msg.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
    start = time.process_time()
    t0 = time.monotonic()
    for i in range(count):
        send(PACED)
        time.sleep(max(0.0, t0 + (i + 1) / hz - time.monotonic()))
    paced = time.process_time() - start
    start = time.process_time()
    for _ in range(count):
        send(BURST)
    burst = time.process_time() - start
    time.sleep(0.5)   # let the burst drain before the end marker
    for _ in range(3):
        send(END)
        time.sleep(0.2)
    node.destroy_node()
    executor.shutdown()
    return {'paced_ms': 1000 * paced / count, 'burst_ms': 1000 * burst / count}


def listen(timeout_s: float) -> Dict[str, float]:
    from std_msgs.msg import Header

    from edge_tracker.conversions import raw_header
    from edge_tracker.qos import notice_qos
    node, executor = _node('message_cost_listener')
    counts = {PACED: 0, BURST: 0}
    marks: Dict[str, float] = {}
    done = threading.Event()

    def on_message(data: bytes) -> None:
        kind = raw_header(data, Header).frame_id
        if kind not in marks:
            marks[kind] = time.process_time()
        if kind == END:
            done.set()
        elif kind in counts:
            counts[kind] += 1
    node.create_subscription(Header, 'message_cost', on_message, notice_qos(), raw=True)
    deadline = time.monotonic() + timeout_s
    while not done.is_set() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.2)
    node.destroy_node()
    executor.shutdown()
    if not done.is_set() or PACED not in marks or BURST not in marks:
        raise SystemExit('message_cost: the talker did not finish')
    # From the first paced message to the first burst one: the paced messages less one.
    return {'paced_ms': 1000 * (marks[BURST] - marks[PACED]) / max(1, counts[PACED] - 1),
            'burst_ms': 1000 * (marks[END] - marks[BURST]) / max(1, counts[BURST]),
            'received': counts[PACED] + counts[BURST]}


def measure(hz: float = 30.0, seconds: float = 8.0,
            domain_id: Optional[int] = None) -> Dict[str, float]:
    """Both sides' CPU milliseconds per message, paced and in a burst (two child processes in a
    DDS domain of their own)."""
    from edge_tracker.tools.procs import Child, json_results
    domain = domain_id if domain_id is not None else 1 + os.getpid() % 100
    count = max(10, int(hz * seconds))
    timeout = seconds + 30.0
    folder = tempfile.mkdtemp(prefix='edge_tracker_message_cost_')
    base = [sys.executable, '-m', 'edge_tracker.tools.message_cost', '--timeout', str(timeout),
            '--domain', str(domain)]
    children = [Child('listener', base + ['--role', 'listen'],
                      os.path.join(folder, 'listener.log')),
                Child('talker', base + ['--role', 'talk', '--hz', str(hz), '--count', str(count)],
                      os.path.join(folder, 'talker.log'))]
    out: Dict[str, float] = {'hz': hz, 'messages': count}
    for child, result in zip(children, json_results(children, timeout + 10.0, 'message_cost')):
        for key, value in result.items():
            out[f'{child.label}_{key}'] = value
    return out


def describe(r: Dict[str, float]) -> str:
    return (f"one message between two processes (std_msgs/Header, reliable) costs "
            f"{r['talker_paced_ms']:.2f} ms publishing + {r['listener_paced_ms']:.2f} ms "
            f"taking at {r['hz']:g} Hz, {r['talker_burst_ms']:.3f} + "
            f"{r['listener_burst_ms']:.3f} ms back to back")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--role', choices=('talk', 'listen'), default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument('--count', type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument('--timeout', type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument('--domain', type=int, default=None,
                        help='ROS_DOMAIN_ID (default 1 + pid %% 100)')
    parser.add_argument('--hz', type=float, default=30.0, help='paced rate (default 30)')
    parser.add_argument('--seconds', type=float, default=8.0,
                        help='length of the paced part (default 8)')
    args = parser.parse_args(argv)
    if args.role is not None:
        from edge_tracker.tools.procs import isolate
        isolate(args.domain)   # before the participant: this host only, sized transports
    if args.role == 'talk':
        print(json.dumps(talk(args.hz, args.count, args.timeout)), flush=True)
        return 0
    if args.role == 'listen':
        print(json.dumps(listen(args.timeout)), flush=True)
        return 0
    result = measure(args.hz, args.seconds, args.domain)
    print(describe(result))
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
