"""`make demo` as a user runs it (shorter): it completes and leaves non-empty outputs."""

import json
import os
import subprocess
import sys

import cv2


def test_demo_runs_and_leaves_video_snapshots_and_tracks(tmp_path):
    out = tmp_path / 'demo'
    result = subprocess.run([sys.executable, '-m', 'edge_tracker.tools.demo', '--frames', '90',
                             '--out', str(out)], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, ROS_DOMAIN_ID=str(
                                (int(os.environ['ROS_DOMAIN_ID']) + 101) % 232)))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'frames' in result.stdout and 'done:' in result.stdout
    video = out / 'annotated.avi'
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    assert ok and frame.shape == (480, 640, 3)
    lines = (out / 'tracks.jsonl').read_text().splitlines()
    assert len(lines) >= 45
    records = [json.loads(line) for line in lines]
    assert all({'stamp', 'frame_id', 'tracks'} <= set(r) for r in records)
    assert sum(len(r['tracks']) for r in records) > 0, 'the demo model tracked nothing'
    assert list((out / 'snapshots').glob('*.png'))
