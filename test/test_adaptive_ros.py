"""Adaptive inference across processes: thermal governor, predicted tracks, motion gate."""

import time

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from edge_tracker.qos import image_qos, notice_qos, results_qos
from test_pipeline import RANDOM_MODEL, diagnostic_values


def _write_temp(zone, celsius):
    (zone / 'temp').write_text(f'{int(celsius * 1000)}\n')


def test_thermal_level_slows_pauses_and_restores_inference(spinner, processes, tmp_path):
    zone = tmp_path / 'thermal_zone0'
    zone.mkdir()
    (zone / 'type').write_text('cpu-thermal\n')
    _write_temp(zone, 40)
    fps = 6.0
    processes.start('thermal_node', {'sysfs_root': str(tmp_path), 'period_s': 0.2})
    processes.start('camera_node', {'source': 'synthetic', 'fps': fps})
    detector = processes.start('detector_node', dict(
        RANDOM_MODEL, warm_frame_skip=2, hot_frame_skip=3, fallback_level=2, fallback_imgsz=160,
        critical_pause=True))
    processes.start('tracker_node')
    detections = []
    spinner.node.create_subscription(Detection2DArray, 'detections',
                                     lambda m: detections.append(time.monotonic()),
                                     results_qos())
    tracks = []
    spinner.node.create_subscription(Detection2DArray, 'tracks',
                                     lambda m: tracks.append(time.monotonic()), results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: len(detections) > 5, 90, 'detections at normal temperature')

    def phase(celsius, level, seconds=5.0):
        _write_temp(zone, celsius)
        spinner.until(lambda: (diagnostic_values(diags, 'detector') or {}).get(
            'throttle_level') == str(level), 20, f'the detector to reach level {level}')
        spinner.spin_for(1.0)  # let the new mode settle (and a fallback load)
        d0, t0, tr0 = len(detections), time.monotonic(), len(tracks)
        spinner.spin_for(seconds)
        span = time.monotonic() - t0
        return (len(detections) - d0) / span, (len(tracks) - tr0) / span

    normal, normal_tracks = phase(40, 0)
    hot, hot_tracks = phase(85, 2)
    critical, critical_tracks = phase(95, 3, seconds=3.0)
    cooled, _ = phase(40, 0)

    assert normal > 0.8 * fps, f'normal inference rate {normal:.1f} Hz'
    assert abs(hot - normal / 3) < 0.25 * normal / 3 + 0.3, f'hot {hot:.2f} vs normal {normal:.2f}'
    assert critical == 0.0
    assert min(hot_tracks, critical_tracks) > 0.8 * fps, 'tracks must keep the camera rate'
    assert cooled > 0.8 * normal
    log = detector.log()
    assert 'loading fallback model yolov8n.yaml at imgsz 160' in log
    assert 'thermal level 3 (critical): inference paused' in log
    assert 'thermal level 0 (normal): inference on every frame, main model' in log
    assert detector.alive()


def _box_at(frame):
    """Truth: a 50x50 box moving 6 px right and 2 px down per frame."""
    x, y = 60 + 6 * frame, 80 + 2 * frame
    return x, y, x + 50, y + 50


def test_frame_skip_3_gives_camera_rate_tracks_with_accurate_predictions(spinner, processes):
    processes.start('tracker_node', {'minimum_consecutive_frames': 1})
    info_pub = spinner.node.create_publisher(CameraInfo, 'camera_info', image_qos('reliable', 5))
    det_pub = spinner.node.create_publisher(Detection2DArray, 'detections', results_qos())
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    spinner.until(lambda: det_pub.get_subscription_count() and info_pub.get_subscription_count(),
                  30, 'the tracker to subscribe')
    spinner.spin_for(0.5)
    frames = 60
    for i in range(frames):  # a 30 Hz camera; the "detector" answers every third frame
        info = CameraInfo()
        info.header.frame_id = 'cam'
        info.header.stamp.sec, info.header.stamp.nanosec = 100 + i // 30, (i % 30) * 33_333_333
        info_pub.publish(info)
        if i % 3 == 0:
            msg = Detection2DArray()
            msg.header = info.header
            x1, y1, x2, y2 = _box_at(i)
            d = Detection2D()
            d.header = info.header
            d.bbox.center.position.x, d.bbox.center.position.y = (x1 + x2) / 2, (y1 + y2) / 2
            d.bbox.size_x, d.bbox.size_y = 50.0, 50.0
            hyp = ObjectHypothesisWithPose()
            hyp.hypothesis.class_id, hyp.hypothesis.score = 'square', 0.9
            d.results.append(hyp)
            msg.detections.append(d)
            spinner.spin_for(0.01)
            det_pub.publish(msg)
        spinner.spin_for(1 / 30)
    spinner.until(lambda: len(tracks) >= frames, 10, 'a tracks message for every frame')
    assert len(tracks) == frames
    predicted_errors = []
    for i, msg in enumerate(tracks):
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (100 + i // 30,
                                                                   (i % 30) * 33_333_333)
        if i < 9 or not msg.detections:
            continue
        d = msg.detections[0]
        is_predicted = d.header.stamp != msg.header.stamp
        assert is_predicted == (i % 3 != 0), f'frame {i}: predicted marking wrong'
        cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
        x1, y1, x2, y2 = _box_at(i)
        if is_predicted:
            predicted_errors.append(max(abs(cx - (x1 + x2) / 2), abs(cy - (y1 + y2) / 2)))
    assert len(predicted_errors) > 30
    assert max(predicted_errors) < 3.0, f'predicted boxes off by up to {max(predicted_errors):.1f}'


def _gate_clip(path, frames=80, enter_at=50, fps=10.0):
    """A static noisy room; a square enters at `enter_at` and keeps moving. Pixel (0, 0) carries
    the frame index (too small a change to count as motion)."""
    rng = np.random.default_rng(3)
    background = rng.integers(60, 120, (240, 320, 3)).astype(np.uint8)
    # Lossless, so the index survives.
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'FFV1'), fps, (320, 240))
    for i in range(frames):
        frame = background.copy()
        if i >= enter_at:
            x = 10 + 8 * (i - enter_at)
            frame[100:150, x:x + 50] = (40, 200, 40)
        frame[0:2, 0:2] = i * 3
        writer.write(frame)
    writer.release()


def test_motion_gate_skips_a_static_scene_and_infers_the_first_frame_with_motion(
        spinner, processes, tmp_path):
    """Judged on what this run's detector did with each frame it took, so a busy machine
    (inference slower than the clip, frames replaced while it runs) cannot fail it: every frame
    the detector handles is answered on `detections` (inferred) or `detections/skipped`; the
    gate may skip the static ones only, and a frame with motion may be skipped only because a
    newer one replaced it while inference ran (counted as dropped)."""
    clip = tmp_path / 'gate.mkv'
    _gate_clip(clip)
    detector = processes.start('detector_node', dict(RANDOM_MODEL, motion_gate=True,
                                                     motion_refresh_s=0.0))
    images = spinner.collect(Image, 'image_raw', image_qos('reliable', 50))
    stamps = []
    spinner.node.create_subscription(
        Detection2DArray, 'detections',
        lambda m: stamps.append((m.header.stamp.sec, m.header.stamp.nanosec)), results_qos())
    skipped = []
    spinner.node.create_subscription(
        Header, 'detections/skipped', lambda h: skipped.append((h.stamp.sec, h.stamp.nanosec)),
        notice_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: 'model ready' in detector.log(), 90, 'the detector to load')
    spinner.until(lambda: spinner.node.count_subscribers('image_raw') >= 2, 30,
                  'the detector to subscribe')
    # The camera starts once it sees a subscriber on both topics (and 0.5 s more): its first
    # frame must reach this test as well as the detector, or the first frame the detector
    # infers is one this test cannot identify.
    spinner.collect(CameraInfo, 'camera_info', image_qos('reliable', 50))
    camera = processes.start('camera_node', {'source': str(clip), 'loop': False,
                                             'reliability': 'reliable', 'depth': 10,
                                             'wait_for_subscribers': 1})
    spinner.until(lambda: camera.popen.poll() is not None, 60, 'the clip to end')

    def settled():   # the detector reported everything it answered
        d = diagnostic_values(diags, 'detector') or {}
        return d.get('inferred_frames') == str(len(stamps)) and \
            int(d.get('motion_blocked_frames', -1)) + int(d.get('dropped_frames', -1)) \
            == len(skipped)
    spinner.until(settled, 60, 'the detector to answer every frame it took')
    d = diagnostic_values(diags, 'detector')
    index_of = {}
    for msg in images:
        frame = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
        index_of[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = round(frame[0, 0, 0] / 3)
    inferred = sorted(index_of[s] for s in stamps if s in index_of)
    passed_over = sorted(index_of[s] for s in skipped if s in index_of)
    seen = sorted(index_of.values())
    assert 50 in seen and seen[0] < 40, f'frames this test received: {seen}'
    assert len(inferred) == len(stamps) and len(passed_over) == len(skipped)
    # The first frame the detector sees is inferred (the gate's reference); no other static one.
    static = [i for i in inferred if i < 50]
    assert len(static) <= 1, f'static frames inferred: {static}'
    assert 50 in inferred, f'first frame with the object not inferred: {inferred}'
    moving_skipped = [i for i in passed_over if i >= 50]
    static_skipped = [i for i in passed_over if i < 50]
    # The gate blocked exactly the static frames; moving ones were only replaced while busy.
    assert int(d['motion_blocked_frames']) == len(static_skipped), (d, static_skipped)
    assert len(moving_skipped) == int(d['dropped_frames']), (d, moving_skipped)
    assert len([i for i in inferred if i >= 50]) >= 1
