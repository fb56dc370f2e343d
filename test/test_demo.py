"""`make demo` as a user runs it (shorter): counted in inferred frames from the moment the model
is ready, it shows tracks with ids, exits 0 (no abort at exit) and leaves non-empty outputs.
On a machine too slow for its time limit it says so and exits 1."""

import json
import os
import sys

import cv2

from edge_tracker.tools.procs import run


def _demo(out, *extra):
    env = dict(os.environ, ROS_DOMAIN_ID=str((int(os.environ['ROS_DOMAIN_ID']) + 101) % 232))
    # The demo prints a line a second: silence means stuck, slowness is allowed.
    return run([sys.executable, '-m', 'edge_tracker.tools.demo', '--out', str(out), *extra],
               timeout=900, idle_timeout=120, env=env)


def test_demo_runs_and_leaves_video_snapshots_and_tracks(tmp_path):
    out = tmp_path / 'demo'
    inferred = 40
    result = _demo(out, '--inferred', str(inferred), '--critical-s', '1')
    text = result.stdout
    assert result.returncode == 0, text[-4000:]
    assert 'terminate called' not in text and 'Traceback' not in text, text[-4000:]
    assert 'model ready' in text and 'done:' in text
    done = [line for line in text.splitlines() if line.startswith('done:')][0]
    assert f'done: {inferred} frames inferred' in done or \
        int(done.split()[1]) >= inferred, done
    ids = int(done.split(' track ids')[0].rsplit(' ', 1)[1])
    assert ids > 0, done
    video = out / 'annotated.avi'
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    assert ok and frame.shape == (480, 640, 3)
    records = [json.loads(line) for line in (out / 'tracks.jsonl').read_text().splitlines()]
    assert all({'stamp', 'frame_id', 'tracks'} <= set(r) for r in records)
    tracked = [t for r in records for t in r['tracks']]
    assert tracked, 'the demo model tracked nothing'
    assert len({t['id'] for t in tracked}) == ids
    assert any(not t['predicted'] for t in tracked)
    assert list((out / 'snapshots').glob('*.png'))
    # Every level of the simulated zone was shown.
    for level in ('warm', 'hot', 'critical', 'normal'):
        assert f'({level})' in text, level


def test_demo_on_a_machine_too_slow_says_so(tmp_path):
    """A time limit the run cannot meet (far more frames than fit): a clear message, exit 1,
    the outputs still written."""
    result = _demo(tmp_path / 'demo', '--inferred', '100000', '--time-limit', '3')
    assert result.returncode == 1, result.stdout[-3000:]
    assert 'too slow' in result.stdout and 'terminate called' not in result.stdout
    assert (tmp_path / 'demo' / 'tracks.jsonl').exists()
