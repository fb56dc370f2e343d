from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'edge_tracker'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, PACKAGE + '.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.rviz') + glob('config/*.xml')),
        ('share/' + PACKAGE + '/models', glob('models/*')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='edge_tracker maintainers',
    maintainer_email='maintainers@edge-tracker.dev',
    description='Real-time object tracking for edge computers as ROS 2 nodes.',
    license='AGPL-3.0-only',
    entry_points={
        'console_scripts': [
            'camera_node = edge_tracker.nodes.camera_node:main',
            'detector_node = edge_tracker.nodes.detector_node:main',
            'tracker_node = edge_tracker.nodes.tracker_node:main',
            'thermal_node = edge_tracker.nodes.thermal_node:main',
            'pipeline = edge_tracker.nodes.pipeline:main',
            'edge_eval = edge_tracker.tools.eval:main',
            'edge_bench = edge_tracker.tools.bench:main',
        ],
    },
)
