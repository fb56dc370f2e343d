"""`bench --quick` runs end to end (every variant, real ROS processes) and its JSON holds
every figure the issue asks for, as finite non-negative numbers."""

import json
import math
import os
import sys
from pathlib import Path

from conftest import REPO, shared_video
from edge_tracker.tools.procs import run

# Figures per variant; nested dicts are written 'a.b'. Written out here, not imported from
# the bench, so that a figure the bench stops writing fails this test.
LOOP_KEYS = ('fps', 'latency_ms.mean', 'latency_ms.p50', 'latency_ms.p95', 'detect_ms',
             'preprocess_ms', 'inference_ms', 'postprocess_ms', 'cpu_pct', 'other_cpu_pct')
GRAPH_KEYS = ('fps', 'tracks_all_hz', 'camera_hz', 'e2e_ms.p50', 'e2e_ms.p95', 'publish_ms',
              'transport_ms.p50', 'transport_ms.p95', 'detect_ms', 'detections_ms.p50',
              'tracks_after_detections_ms.p50', 'tracking_ms', 'cpu_pct.probe',
              'machine_cpu_pct', 'other_cpu_pct', 'camera_fps_set',
              'cpu_ms_per_frame.inference', 'inference_cpu_share', 'glue_share')
FIGURES = {
    'predict_1t': LOOP_KEYS,
    'predict': LOOP_KEYS,
    'predict_parallel': ('fps', 'latency_ms.mean', 'latency_ms.p50', 'latency_ms.p95',
                         'detect_ms', 'workers', 'cpu_pct', 'other_cpu_pct'),
    'naive': LOOP_KEYS + ('capture_ms', 'tracking_ms', 'drawing_ms'),
    'ros_nodes': GRAPH_KEYS + (
        'cpu_pct.camera', 'cpu_pct.detector', 'cpu_pct.tracker', 'rss_mb.camera',
        'rss_mb.detector', 'rss_mb.tracker', 'cpu_ms_per_frame.camera',
        'cpu_ms_per_frame.detector_outside_inference', 'cpu_ms_per_frame.tracker'),
    'pipeline': GRAPH_KEYS + ('cpu_pct.pipeline', 'rss_mb.pipeline',
                              'cpu_ms_per_frame.glue_in_process'),
}
# The camera at 30 Hz reports the same figures.
FIGURES['ros_nodes_30hz'] = FIGURES['ros_nodes']
FIGURES['pipeline_30hz'] = FIGURES['pipeline']
CASE_KEYS = ('capture_ms.mean', 'capture_ms.p50', 'capture_ms.p95',
             # image_raw/compressed: JPEG encode (camera) and decode (detector) per frame
             'compressed.encode_ms.p50', 'compressed.decode_ms.p50', 'compressed.jpeg_kb')
TRACKER_KEYS = ('update_ms', 'update_mean_ms', 'update_p95_ms', 'bytetrack_ms')
# Must be positive: a zero here means nothing was measured.
POSITIVE = ('fps', 'latency_ms.p50', 'e2e_ms.p50', 'detect_ms', 'inference_ms',
            'transport_ms.p50', 'publish_ms', 'cpu_pct.detector', 'cpu_pct.pipeline',
            'rss_mb.detector', 'rss_mb.pipeline', 'camera_hz', 'cpu_ms_per_frame.inference',
            'inference_cpu_share', 'glue_share', 'workers', 'cpu_ms_per_frame.camera',
            'cpu_ms_per_frame.tracker', 'cpu_ms_per_frame.detector_outside_inference',
            'compressed.encode_ms.p50', 'compressed.decode_ms.p50', 'compressed.jpeg_kb')


def _get(tree, dotted):
    for part in dotted.split('.'):
        assert isinstance(tree, dict) and part in tree, f'missing {dotted!r}'
        tree = tree[part]
    return tree


def _check_figure(tree, key, where):
    value = _get(tree, key)
    assert isinstance(value, (int, float)) and not isinstance(value, bool), \
        f'{where}.{key} = {value!r} is not a number'
    assert math.isfinite(value) and value >= 0, f'{where}.{key} = {value!r}'
    if key in POSITIVE:
        assert value > 0, f'{where}.{key} = {value!r}: nothing measured'
    return value


def test_bench_quick_writes_every_figure(tmp_path):
    shared_video('car-detection.mp4')
    out = tmp_path / 'bench.json'
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    # bench reports each step as it ends: a step that takes minutes on a busy machine is slow,
    # not stuck (its own waits fail with a message); silence for longer is a hang.
    proc = run([sys.executable, '-m', 'edge_tracker.tools.bench', '--quick', '--json', str(out)],
               timeout=1500, idle_timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, f'bench failed:\n{proc.stdout[-6000:]}'
    assert 'Targets:' in proc.stdout
    assert 'image_raw/compressed (JPEG quality 80): camera encode' in proc.stdout
    report = json.loads(Path(out).read_text())

    for key in ('date', 'machine.cpu_model', 'versions.torch', 'versions.ultralytics',
                'versions.trackers', 'versions.rclpy', 'versions.ros_distro',
                'settings.model', 'settings.imgsz', 'settings.threads', 'settings.workers',
                'settings.backend'):
        assert _get(report, key) not in ('', None), key
    assert _check_figure(report, 'machine.cores', 'machine') >= 1

    cases = report['results']
    assert [c['input'] for c in cases] == ['video']   # --quick: the video at 640x480
    for case in cases:
        assert (case['width'], case['height']) == (640, 480)
        for key in CASE_KEYS:
            _check_figure(case, key, case['name'])
        for variant, keys in FIGURES.items():
            assert variant in case, f'{case["name"]}: no {variant} results'
            for key in keys:
                _check_figure(case[variant], key, f'{case["name"]}.{variant}')
            lat = case[variant].get('latency_ms') or case[variant]['e2e_ms']
            assert lat['p95'] >= lat['p50'], f'{case["name"]}.{variant}: p95 < p50'
        # (c) and (d): the camera faster than the parallel loop infers.
        for variant in ('ros_nodes', 'pipeline'):
            assert case[variant]['camera_fps_set'] > case['predict_parallel']['fps']
        for variant in ('ros_nodes_30hz', 'pipeline_30hz'):
            assert case[variant]['camera_fps_set'] == 30.0
        # In-flight notices per camera frame, from the detector's own counters (0 when it
        # keeps up; at most one per frame).
        notices = case['ros_nodes_30hz']['in_flight_per_frame']
        assert math.isfinite(notices) and 0.0 <= notices <= 1.0, notices
        assert case['predict_parallel']['workers'] == report['settings']['workers'] >= 1

    for n in ('10', '50', '200'):
        for key in TRACKER_KEYS:
            _check_figure(report['tracker'][n], key, f'tracker.{n}')

    targets = {(t['target'], t['variant'], t['case']) for t in report['targets']}
    for case in cases:
        for target, variant in (('parallel_ratio', 'ros_nodes'), ('sequential_ratio', 'ros_nodes'),
                                ('pipeline_ratio', 'pipeline'),
                                ('inferred_share_30hz', 'ros_nodes_30hz'),
                                ('tracks_share_30hz', 'ros_nodes_30hz'),
                                ('latency_extra_ms', 'ros_nodes_30hz'),
                                ('glue_share', 'ros_nodes_30hz'),
                                ('glue_share', 'pipeline_30hz')):
            assert (target, variant, case['name']) in targets
    assert ('tracking_ms_50', 'tracker', '50 boxes') in targets
    messaging = report['messaging']
    assert messaging['listener_received'] == 2 * messaging['messages']   # reliable: every one
    for key in ('talker_paced_ms', 'listener_paced_ms', 'talker_burst_ms', 'listener_burst_ms'):
        assert _check_figure(messaging, key, 'messaging') > 0
    assert 'one message between two processes' in proc.stdout
    for t in report['targets']:
        assert isinstance(t['met'], bool) and math.isfinite(t['value'])
        assert t['met'] or t['why'], f'{t["label"]} missed without saying where'
