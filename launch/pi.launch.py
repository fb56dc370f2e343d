"""Raspberry Pi 5: CPU inference with NCNN at 320 px, frame skipping and the motion gate.

    ros2 launch edge_tracker pi.launch.py [namespace:=...] [source:=...] [model:=...]
        [params_file:=...] [rviz:=true] [log_level:=info] [use_thermal:=true]
        [use_camera:=true] [use_sim_time:=false]
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource


def generate_launch_description():
    base = os.path.join(get_package_share_directory('edge_tracker'), 'launch',
                        'edge_tracker.launch.py')
    return LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(base), launch_arguments={'profile': 'pi'}.items())])
