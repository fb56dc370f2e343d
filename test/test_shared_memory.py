"""Fast DDS's shared-memory files of a killed node are removed by procs.clean_shared_memory,
while those of a live node stay and it keeps publishing."""

import signal
from pathlib import Path

from sensor_msgs.msg import CameraInfo

from edge_tracker.qos import image_qos
from edge_tracker.tools.procs import clean_shared_memory

SHM = Path('/dev/shm')


def _segments():
    return {p.name for p in SHM.glob('fastdds_*') if not p.name.startswith('fastdds_port')}


def test_clean_removes_a_killed_nodes_segments_and_keeps_live_ones(spinner, processes):
    info = spinner.collect(CameraInfo, 'camera_info', image_qos('best_effort', 5))
    live = processes.start('camera_node', {'source': 'synthetic', 'fps': 10.0})
    spinner.until(lambda: len(info) >= 3, 60, 'camera_info from the live camera')
    before = _segments()
    doomed = processes.start('camera_node', {'source': 'synthetic', 'fps': 10.0},
                             name='doomed', namespace='/doomed')
    spinner.until(lambda: 'doomed' in spinner.node.get_node_names(), 60, 'the second camera')
    left = _segments() - before
    assert left, 'the second camera made no shared-memory segment'
    doomed.stop(signal.SIGKILL)
    assert left <= _segments(), 'a SIGKILLed node leaves its segments behind'
    report = clean_shared_memory()
    assert report is not None and 'zombie segments cleaned' in report, report
    assert not left & _segments(), f'still there after cleaning: {left & _segments()}'
    n = len(info)
    spinner.until(lambda: len(info) >= n + 3, 30, 'camera_info after cleaning')
    assert live.alive()
