"""NVIDIA Jetson: TensorRT engine on the GPU, FP16, 640 px, 1280x720 camera.

    ros2 launch edge_tracker jetson.launch.py [namespace:=...] [source:=...] [model:=...]
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
        PythonLaunchDescriptionSource(base), launch_arguments={'profile': 'jetson'}.items())])
