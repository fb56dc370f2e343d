"""Which ROS 2 this run is on: `make test` runs the model-free node tests a second time in the
Jazzy environment (EDGE_TRACKER_ENV=jazzy), and this proves that run really was Jazzy with a
Jazzy robot's numpy 1.x and OpenCV 4, not the main Kilted environment again."""

import os
from importlib.metadata import version

import cv2
import numpy as np
import rclpy  # noqa: F401  (the rclpy this run imports is the one whose wheel is measured)


def test_this_run_is_on_the_ros_2_it_claims():
    rclpy_major = int(version('ros-rclpy').split('.')[0])
    if os.environ.get('EDGE_TRACKER_ENV') == 'jazzy':
        assert rclpy_major == 7, 'Jazzy is rclpy 7.x'
        assert int(np.__version__.split('.')[0]) == 1
        assert cv2.__version__.startswith('4.')
    else:
        assert rclpy_major >= 9, 'the main environment is Kilted (rclpy 9.x) or newer'
