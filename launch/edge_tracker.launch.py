"""Shared launch description of edge_tracker: `profile` (jetson, pi, coral) chooses the
parameter file; the profile files (jetson/pi/coral.launch.py) only set it.

    ros2 launch edge_tracker pi.launch.py namespace:=front source:=/dev/video2 rviz:=true

Which nodes start with which parameters is decided by edge_tracker.core.launch_plan, which the
single-process `pipeline` executable and the tests share.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction,
                            RegisterEventHandler, SetEnvironmentVariable)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from edge_tracker.core.launch_plan import PROFILES, make_plan

ARGUMENTS = (
    ('profile', 'pi', f'hardware profile: {", ".join(PROFILES)}'),
    ('namespace', '', 'namespace of this pipeline (one per camera, e.g. front)'),
    ('source', '', 'camera source (device, file, URL, GStreamer pipeline, synthetic); '
                   'empty keeps the profile\'s'),
    ('model', '', 'detector model path; empty keeps the profile\'s'),
    ('params_file', '', 'parameter YAML used instead of config/<profile>.yaml'),
    ('rviz', 'false', 'start RViz with config/edge_tracker.rviz'),
    ('log_level', 'info', 'log level of the nodes (debug, info, warn, error)'),
    ('use_thermal', 'true', 'start the thermal monitor'),
    ('use_camera', 'true', 'start the camera (false: image_raw and camera_info come from '
                           'elsewhere, e.g. ros2 bag play)'),
    ('use_sim_time', 'false', 'every node on /clock time (a replayed recording with '
                              'ros2 bag play --clock, or a simulator)'),
)

TRUE = ('true', '1', 'yes', 'on')


def launch_setup(context, *args, **kwargs):
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    share = get_package_share_directory('edge_tracker')
    plan = make_plan(share, arg['profile'], namespace=arg['namespace'], source=arg['source'],
                     model=arg['model'], params_file=arg['params_file'],
                     use_thermal=arg['use_thermal'].lower() in TRUE,
                     use_camera=arg['use_camera'].lower() in TRUE,
                     use_sim_time=arg['use_sim_time'].lower() in TRUE,
                     log_level=arg['log_level'])
    actions = [SetEnvironmentVariable(key, value) for key, value in plan.env.items()]
    for node in plan.nodes:
        # The respawn delay is also the window in which a shutdown cancels a respawn.
        process = Node(
            package='edge_tracker', executable=node.executable, name=node.name,
            namespace=plan.namespace, parameters=[plan.params_file, node.overrides],
            remappings=node.remappings, respawn=node.respawn, respawn_delay=2.0,
            output='screen', arguments=['--ros-args', '--log-level', plan.log_level])
        actions += [process, RegisterEventHandler(OnProcessExit(
            target_action=process, on_exit=_exit_handler(plan, node)))]
    if arg['rviz'].lower() in TRUE:
        prefix = f'/{plan.namespace}' if plan.namespace else ''
        actions.append(Node(
            package='rviz2', executable='rviz2', name='rviz2', namespace=plan.namespace,
            arguments=['-d', os.path.join(share, 'config', 'edge_tracker.rviz')],
            parameters=[{'use_sim_time': arg['use_sim_time'].lower() in TRUE}],
            remappings=[(f'/{topic}', f'{prefix}/{topic}')
                        for topic in ('annotated_image', 'image_raw')]))
    return actions


def _exit_handler(plan, node):
    def on_exit(event, context):
        reason = plan.on_exit(node, event.returncode)
        if reason is None:
            return None
        return [LogInfo(msg=reason), EmitEvent(event=Shutdown(reason=reason))]
    return on_exit


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS]
        + [OpaqueFunction(function=launch_setup)])
