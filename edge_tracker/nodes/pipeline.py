"""pipeline: a profile's nodes in one process, for machines without `ros2 launch` (a
pip-installed ROS); the camera hands its frames to the detector directly (link_in_process).
Same arguments and YAML as the launch files:

    pipeline profile:=pi source:=synthetic model:=yolov8n.pt namespace:=front
"""

import sys
from typing import Dict, List, Optional

from edge_tracker.core.launch_plan import PlanError, make_plan
from edge_tracker.node_main import exit_now, run
from edge_tracker.paths import share_directory

ARGUMENTS = {'profile': 'pi', 'namespace': '', 'source': '', 'model': '', 'params_file': '',
             'log_level': 'info', 'use_thermal': 'true', 'use_camera': 'true',
             'use_sim_time': 'false'}
TRUE = ('true', '1', 'yes', 'on')


def parse_arguments(argv: List[str]) -> Dict[str, str]:
    """`name:=value` pairs (as `ros2 launch` takes them); anything after --ros-args is rclpy's."""
    values = dict(ARGUMENTS)
    for item in argv:
        if item == '--ros-args':
            break
        name, sep, value = item.partition(':=')
        if not sep or name not in ARGUMENTS:
            raise PlanError(f'unknown argument {item!r}; use name:=value with name one of '
                            f'{", ".join(ARGUMENTS)}')
        values[name] = value
    return values


def node_classes():
    from edge_tracker.nodes.camera_node import CameraNode
    from edge_tracker.nodes.detector_node import DetectorNode
    from edge_tracker.nodes.thermal_node import ThermalNode
    from edge_tracker.nodes.tracker_node import TrackerNode
    return {'camera_node': CameraNode, 'detector_node': DetectorNode,
            'tracker_node': TrackerNode, 'thermal_node': ThermalNode}


def make_nodes(plan) -> list:
    classes = node_classes()
    nodes = []
    for spec in plan.nodes:
        nodes.append(classes[spec.executable](
            cli_args=plan.ros_args(spec, log_level=False), use_global_arguments=False))
    link_in_process(nodes)
    return nodes


def link_in_process(nodes: list) -> int:
    """Hands each camera's frames straight to the detectors of this process that subscribe to
    its image_raw, and each detector's detections and frame announcements to the trackers
    that take them, as C++ composition's intra-process transport does: no serialisation, no
    copy into shared memory, no middleware wake-up per message. The topics are still
    published while anyone else (the tracker's annotation, RViz, a recorder) subscribes.
    Returns the links."""
    from edge_tracker.nodes.camera_node import CameraNode
    from edge_tracker.nodes.detector_node import DetectorNode
    from edge_tracker.nodes.tracker_node import TrackerNode
    links = 0
    for camera in (n for n in nodes if isinstance(n, CameraNode)):
        topic = camera.resolve_topic_name('image_raw')
        for detector in (n for n in nodes if isinstance(n, DetectorNode)):
            if detector.takes_local_frames(topic):
                detector.use_local_feed()
                camera.local_sinks = camera.local_sinks + (detector.offer_local,)
                links += 1
    # And each detector's results to the trackers of this process that take its topics.
    for detector in (n for n in nodes if isinstance(n, DetectorNode)):
        for tracker in (n for n in nodes if isinstance(n, TrackerNode)):
            if tracker.takes_local_results(detector):
                tracker.use_local_results()
                detector.add_local_tracker(tracker)
                links += 1
    return links


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        arg = parse_arguments(argv)
        plan = make_plan(share_directory(), arg['profile'], namespace=arg['namespace'],
                         source=arg['source'], model=arg['model'],
                         params_file=arg['params_file'],
                         use_thermal=arg['use_thermal'].lower() in TRUE,
                         use_camera=arg['use_camera'].lower() in TRUE,
                         use_sim_time=arg['use_sim_time'].lower() in TRUE,
                         log_level=arg['log_level'])
    except PlanError as exc:
        print(f'pipeline: {exc}', file=sys.stderr)
        sys.exit(2)
    # run() applies the plan's transport settings (plan.env) before rclpy.init, as every node
    # process does.
    rclpy_args = ['--ros-args', '--log-level', plan.log_level]
    exit_now(run(lambda: make_nodes(plan), args=rclpy_args))
