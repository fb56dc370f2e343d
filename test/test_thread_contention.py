"""tools/thread_contention: real inference processes, with and without a busy loop beside."""

import subprocess

from edge_tracker.tools import thread_contention


def _busy_loops():
    out = subprocess.run(['pgrep', '-f', 'while :; do :; done'], capture_output=True, text=True)
    return set(out.stdout.split())


def test_inference_processes_report_their_frames_and_the_busy_loop_ends_with_the_run():
    before = _busy_loops()
    runs = [thread_contention.run('yolov8n.yaml', 64, processes=2, threads=1, seconds=1.5,
                                  busy=busy, load_s=15.0) for busy in (False, True)]
    for r, busy in zip(runs, (False, True)):
        assert r['processes'] == 2 and r['threads'] == 1 and r['busy_loop'] is busy
        assert r['frames'] >= 2 and 0 < r['p50_ms'] <= r['p95_ms']
    assert _busy_loops() <= before, 'the busy loop outlived its run'
    assert 'busy loop beside' in thread_contention.describe(runs[1], 2)
