"""Parallel inference across processes: results that finish out of order still give measured
tracks in stamp order, a source without camera_info gets measured tracks, and nodes started
without the launch files' environment still receive images."""

import os
import signal
import time

import pytest

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from edge_tracker.qos import image_qos, notice_qos, results_qos
from conftest import REPO
from test_compressed import _subscribers
from test_pipeline import diagnostic_status, diagnostic_values

# The real detector_node (subscription, worker pool, in-flight/skipped announcements) with its
# model replaced by a slow stand-in: one fixed box per frame after a random delay, so that two
# workers finish frames out of order. sys.argv[1:] are the node's --ros-args.
SLOW_DETECTOR = '''
import random
import sys
import time

import numpy as np
import supervision as sv

import edge_tracker.nodes.detector_node as node


class SlowModel:
    backend = 'stand-in'
    names = {0: 'square'}

    def __init__(self, model, **kwargs):
        self.last_speed_ms = {}
        self.low, self.high = [float(v) for v in model.split(':')[1:3]]

    def set_options(self, **kwargs):
        pass

    def detect(self, frame):
        time.sleep(random.uniform(self.low, self.high))
        return sv.Detections(xyxy=np.array([[100.0, 100.0, 160.0, 160.0]]),
                             confidence=np.array([0.9], np.float32), class_id=np.array([0]))


node.Detector = SlowModel
node.main(sys.argv[1:])
'''


def _stamp(header):
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _slow_detector(processes, low_s, high_s, workers, **params):
    args = ['--ros-args', '-r', '__node:=detector', '-p', f'model:=stand-in:{low_s}:{high_s}:.pt',
            '-p', f'workers:={workers}', '-p', 'threads:=1', '-p', 'isolation:=thread']
    for key, value in params.items():
        args += ['-p', f'{key}:={value}']
    return processes.python(SLOW_DETECTOR, 'slow_detector', args=args)


def _measured(msg):
    """True/False for a tracks message with boxes (each box's header: the frame it was measured
    in); None when it has no boxes to tell by."""
    if not msg.detections:
        return None
    return any(d.header.stamp == msg.header.stamp for d in msg.detections)


def _collect_window(spinner, detections, tracks, seconds, lag_s=1.0):
    """Detections and tracks of one window; tracks are waited for `lag_s` longer so that the
    window's last frames are answered too."""
    d0, t0 = len(detections), len(tracks)
    spinner.spin_for(seconds)
    window = detections[d0:]
    spinner.spin_for(lag_s)
    return window, tracks[t0:]


@pytest.mark.parametrize('executor', ['default', 'single'])
def test_out_of_order_results_give_measured_tracks_for_every_inferred_frame_in_order(
        spinner, processes, monkeypatch, executor):
    # 'single': the wait-set executor of Humble and Jazzy, which takes an in-flight notice and
    # the newer frame's detections sent right after it in subscription order, not arrival.
    if executor != 'default':
        monkeypatch.setenv('EDGE_TRACKER_EXECUTOR', executor)
    processes.start('camera_node', {'source': 'synthetic', 'fps': 20.0, 'width': 320,
                                    'height': 240})
    # Two workers, 40-200 ms a frame: slower than the camera (frames are dropped) and often
    # overtaken by the other worker.
    detector = _slow_detector(processes, 0.04, 0.20, workers=2)
    processes.start('tracker_node', {'max_wait_s': 2.0, 'minimum_consecutive_frames': 1})
    detections = spinner.collect(Detection2DArray, 'detections', results_qos())
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    infos = spinner.collect(CameraInfo, 'camera_info', image_qos())
    skipped = spinner.collect(Header, 'detections/skipped', notice_qos())
    spinner.until(lambda: len(tracks) > 10 and len(detections) > 10, 60, 'the first tracks')
    # Counted from here: while discovery is still matching the in-flight topic, a frame of the
    # first second may go out predicted before its announcement arrived.
    spinner.until(lambda: diagnostic_values(diags, 'tracker') is not None, 10, 'diagnostics')
    late0 = int(diagnostic_values(diags, 'tracker')['late_detections'])
    skipped0 = len(skipped)
    window, answered = _collect_window(spinner, detections, tracks, 8.0)

    stamps = [_stamp(m.header) for m in window]
    reordered = sum(1 for a, b in zip(stamps, stamps[1:]) if b < a)
    assert reordered >= 3, f'the stand-in must finish frames out of order ({reordered} times)'
    out = [_stamp(m.header) for m in answered]
    assert all(b > a for a, b in zip(out, out[1:])), 'tracks not in stamp order'
    by_stamp = {_stamp(m.header): m for m in answered}
    inferred = [s for s in stamps if out[0] <= s <= out[-1]]
    assert len(inferred) > 30
    missing = [s for s in inferred if s not in by_stamp]
    assert not missing, f'{len(missing)} inferred frames got no tracks message'
    predicted = [s for s in inferred if _measured(by_stamp[s]) is not True]
    assert not predicted, f'{len(predicted)} of {len(inferred)} inferred frames went out ' \
        f'predicted while their detections were coming: {[out.index(s) for s in predicted]} of {len(out)}, ' \
        f'{diagnostic_values(diags, "tracker")}'
    # Frames the detector dropped were still answered, by prediction: every camera frame of
    # the window, clocked by the detector's announcements (the tracker takes no camera_info).
    assert not _subscribers(spinner, '/camera_info', 'tracker')
    values = diagnostic_values(diags, 'tracker')
    assert int(values['predicted_frames']) > 0 and int(values['late_detections']) == late0
    frames = [_stamp(m.header) for m in infos if out[0] <= _stamp(m.header) <= out[-1]]
    unanswered = [s for s in frames if s not in by_stamp]
    assert len(unanswered) <= 0.02 * len(frames), \
        f'{len(unanswered)} of {len(frames)} camera frames got no tracks message'
    values = diagnostic_values(diags, 'detector')
    assert values['workers'] == '2' and int(values['dropped_frames']) > 0
    assert int(values['announced_in_flight']) > 0, 'the frames overtaken were announced'
    # Every camera frame the detector did not infer was announced as skipped.
    announced = {_stamp(h) for h in skipped[skipped0:]}
    detected = {_stamp(m.header) for m in detections}
    passed_over = [s for s in frames if s not in detected and s < max(detected)]
    unannounced = [s for s in passed_over if s not in announced]
    assert passed_over and len(unannounced) <= 0.02 * len(frames), \
        f'{len(unannounced)} of {len(passed_over)} passed-over frames were not announced'
    assert all(int(values[f'worker{i}_frames']) > 0 for i in range(2))
    assert detector.alive()
    # Without a detector camera_info is the clock again: the tracks go on at the camera's rate,
    # also when the detector dies without a word (SIGKILL: the graph lists it until its DDS
    # lease expires, ~20 s; the tracker notices the announcements stopping).
    assert detector.stop(signal.SIGKILL) is not None
    spinner.until(lambda: len(_subscribers(spinner, '/camera_info', 'tracker')) == 1, 8,
                  'the tracker to follow camera_info')
    spinner.spin_for(1.0)
    n_tracks, n_infos = len(tracks), len(infos)
    spinner.spin_for(3.0)
    assert len(tracks) - n_tracks >= 0.9 * (len(infos) - n_infos) > 30


def test_a_detector_that_keeps_up_announces_no_frame_in_flight(spinner, processes):
    """Each frame finishes before the next arrives: its detections are all the tracker needs,
    so detections/in_flight stays (almost) silent, and every frame still gets measured tracks
    in stamp order."""
    processes.start('camera_node', {'source': 'synthetic', 'fps': 15.0, 'width': 320,
                                    'height': 240})
    _slow_detector(processes, 0.002, 0.01, workers=2)
    processes.start('tracker_node', {'minimum_consecutive_frames': 1})
    detections = spinner.collect(Detection2DArray, 'detections', results_qos())
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    in_flight = spinner.collect(Header, 'detections/in_flight', notice_qos())
    spinner.until(lambda: len(tracks) > 10 and len(detections) > 10, 60, 'the first tracks')
    n_in_flight = len(in_flight)
    window, answered = _collect_window(spinner, detections, tracks, 5.0)
    out = [_stamp(m.header) for m in answered]
    assert out == sorted(out), 'tracks not in stamp order'
    by_stamp = {_stamp(m.header): m for m in answered}
    inferred = [_stamp(m.header) for m in window if out[0] <= _stamp(m.header) <= out[-1]]
    assert len(inferred) > 40
    measured = [s for s in inferred if s in by_stamp and _measured(by_stamp[s])]
    assert len(measured) == len(inferred), \
        f'{len(inferred) - len(measured)} of {len(inferred)} inferred frames not measured'
    assert len(in_flight) - n_in_flight <= 0.05 * len(window), \
        f'{len(in_flight) - n_in_flight} in-flight notices for {len(window)} frames'


def test_a_source_without_camera_info_gets_measured_tracks(spinner, processes):
    # Only image_raw reaches the graph: camera_info goes to a topic nobody reads.
    processes.start('camera_node', {'source': 'synthetic', 'fps': 30.0, 'width': 320,
                                    'height': 240}, remaps={'camera_info': 'unused_info'})
    _slow_detector(processes, 0.05, 0.07, workers=1)   # slower than the camera: drops
    processes.start('tracker_node', {'minimum_consecutive_frames': 1})
    detections = spinner.collect(Detection2DArray, 'detections', results_qos())
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: len(tracks) > 10 and len(detections) > 10, 60, 'the first tracks')
    window, answered = _collect_window(spinner, detections, tracks, 6.0)
    by_stamp = {_stamp(m.header): m for m in answered}
    inferred = [_stamp(m.header) for m in window]
    inferred = [s for s in inferred if min(by_stamp) <= s <= max(by_stamp)]
    measured = [s for s in inferred if s in by_stamp and _measured(by_stamp[s])]
    assert len(inferred) > 30
    assert len(measured) >= 0.95 * len(inferred), \
        f'only {len(measured)} of {len(inferred)} inferred frames got measured tracks'
    values = diagnostic_values(diags, 'detector')
    assert int(values['dropped_frames']) > 0, 'the detector must be busy for this test'
    # The dropped frames are answered too (predicted), so tracks keep the camera's pace.
    assert len(answered) > 1.3 * len(window)


def test_nodes_started_without_the_launch_environment_receive_full_size_images(
        spinner, processes):
    bare = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE',
            'FASTDDS_BUILTIN_TRANSPORTS')
    fps = 10.0
    processes.start('camera_node', {'source': 'synthetic', 'fps': fps, 'width': 640,
                                    'height': 480}, unset_env=bare)
    # Light inference (160 px, one worker, every other frame): this is about transport.
    processes.start('detector_node', {'model': 'yolov8n.yaml', 'imgsz': 160, 'workers': 1,
                                      'threads': 1, 'frame_skip': 2}, unset_env=bare)
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    images = spinner.collect(Image, 'image_raw', image_qos())

    def counts():
        """(stamp, camera frames), (stamp, detector received frames): each node's counter with
        the time its own status was sent. The two statuses come at different moments, so
        shares are taken from rates, not from counts read at one instant."""
        return _stamped(diags, 'camera', 'frames'), _stamped(diags, 'detector', 'received_frames')

    spinner.until(lambda: counts()[1][1] > 5, 90, 'images at the detector')
    (tc0, sent0), (td0, received0) = counts()
    spinner.spin_for(8.0)
    (tc, sent), (td, received) = counts()
    assert sent - sent0 > 0.7 * fps * 5, f'camera published {sent - sent0} frames'
    share = ((received - received0) / (td - td0)) / ((sent - sent0) / (tc - tc0))
    assert share >= 0.9, f'{received - received0} images in {td - td0:.1f} s reached the ' \
        f'detector, {sent - sent0} in {tc - tc0:.1f} s were sent'
    assert images and images[-1].width == 640


def _stamped(arrays, node_name, key):
    """(stamp in s, value) of `key` in the newest status of `node_name`; (0, 0) before one."""
    found = diagnostic_status(arrays, node_name)
    if found is None:
        return 0.0, 0
    array, values = found
    return _stamp(array.header), int(values.get(key, 0))


def _children(pid: int):
    found = []
    for task in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{task}/children') as f:
            found += [int(c) for c in f.read().split()]
    return found


def test_workers_in_processes_of_their_own_infer_and_end_with_the_node(spinner, processes):
    processes.start('camera_node', {'source': 'synthetic', 'fps': 15.0, 'width': 640,
                                    'height': 480})
    detector = processes.start('detector_node', {
        'model': str(REPO / 'models' / 'edge_tracker_shapes.pt'), 'imgsz': 320,
        'device': 'cpu', 'workers': 2, 'threads': 1, 'isolation': 'process'})
    detections = spinner.collect(Detection2DArray, 'detections', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: len(detections) > 10, 120, 'detections from the worker processes')
    children = _children(detector.popen.pid)
    assert len(children) == 2, f'expected one process per worker, found {children}'
    spinner.until(lambda: int((diagnostic_values(diags, 'detector') or {}).get(
        'inferred_frames', 0)) > 20, 30, 'inferred frames in the diagnostics')
    values = diagnostic_values(diags, 'detector')
    assert values['isolation'] == 'process'
    assert float(values['inference_processes_rss_mb']) > 50, 'each holds a model and torch'
    assert all(int(values[f'worker{i}_frames']) > 0 for i in range(2))
    # The children's CPU is counted as inference, inside the node's process CPU.
    assert 0 < float(values['inference_cpu_s']) <= float(values['process_cpu_s'])
    assert sum(len(m.detections) for m in detections) > 0, 'the shapes model sees the scene'
    # A worker process that dies is replaced; the node keeps inferring.
    os.kill(children[0], signal.SIGKILL)
    before = len(detections)
    spinner.until(lambda: int((diagnostic_values(diags, 'detector') or {}).get(
        'inference_restarts', 0)) == 1, 60, 'the dead worker process replaced')
    spinner.until(lambda: len(detections) > before + 20, 60, 'detections after the restart')
    assert detector.alive()
    pids = _children(detector.popen.pid)
    assert detector.stop() == 0
    for pid in pids:
        deadline = time.monotonic() + 5
        while os.path.exists(f'/proc/{pid}') and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(f'/proc/{pid}'), f'worker process {pid} outlived the node'
