"""A short soak (about 1000 frames at a high camera rate) of camera -> detector -> tracker as
processes, failing on an obvious leak: RSS growing by more than 10 % after the warm-up, or open
file descriptors growing at all. `python -m edge_tracker.tools.soak` runs the long one."""

import json
import os
import sys

from edge_tracker.tools.procs import run
from edge_tracker.tools.soak import summarize


def test_short_soak_finds_no_obvious_leak(tmp_path):
    out = tmp_path / 'soak.json'
    # The domain conftest chose for this run: isolated from other runs on the machine.
    # The simulated zone steps through every throttle level every 2 s.
    cmd = [sys.executable, '-m', 'edge_tracker.tools.soak', '--frames', '1000', '--fps', '100',
           '--warmup', '0.2', '--max-growth', '10', '--json', str(out), '--thermal-cycle', '2',
           '--domain', os.environ['ROS_DOMAIN_ID']]
    # soak prints its progress every 10 s and fails by itself when frames stop for 30 s.
    result = run(cmd, timeout=1500, idle_timeout=240)
    report_text = result.stdout
    assert result.returncode == 0, report_text
    assert 'RSS warm-up' in report_text and 'no leak found' in report_text, report_text

    report = json.loads(out.read_text())
    assert report['passed'] and report['frames'] >= 1000
    assert report['detections'] > 0 and report['tracks'] >= 500, report_text
    assert report['exit_codes'] == {'camera': 0, 'detector': 0, 'tracker': 0, 'thermal': 0}
    assert report['throttle_levels_seen'] == [0, 1, 2, 3], report_text
    for name, s in report['summary'].items():
        assert s['growth_pct'] < 10.0, (name, s)
        assert s['fds_end'] <= s['fds_warm'], (name, s)
        assert s['samples_after_warmup'] >= 3, (name, s)
        samples = report['samples'][name]
        assert all(x['rss_kb'] > 10_000 and x['fds'] > 0 for x in samples), name


def test_summary_flags_growth_and_fits_the_trend():
    """The judgement the soak makes, on made-up samples: 1 MB per 1000 frames after warm-up."""
    samples = [{'frames': f, 'rss_kb': 100_000 + (f if f >= 100 else 5 * f), 'fds': 20}
               for f in range(0, 1100, 100)]
    s = summarize(samples, warm_frames=100)
    assert s['rss_warm_kb'] == 100_100 and s['rss_end_kb'] == 101_000
    assert abs(s['growth_pct'] - 0.899) < 0.01
    assert abs(s['trend_kb_per_1000_frames'] - 1000.0) < 1e-6
    assert s['fds_warm'] == s['fds_end'] == 20
