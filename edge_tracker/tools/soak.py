"""`soak`: runs camera -> detector -> tracker as separate processes for many frames and watches
each node's memory (RSS) and open file descriptors for leaks.

    python -m edge_tracker.tools.soak --frames 20000 --fps 60 [--json soak.json]
        [--thermal-cycle 20]

Frames are counted (camera_info, one per published image) from the moment detections and
tracks come out, so start-up and the model load are not part of the run. The first `--warmup`
share of the frames lets caches, allocator arenas and DDS buffers fill; after it, RSS may grow
by less than `--max-growth` percent and the number of open fds may not grow at all, else the
exit code is 1 (2 when the pipeline itself fails). Every sample goes to the JSON file.
With --thermal-cycle S a thermal monitor reads a simulated zone that steps through normal,
warm, hot and critical every S seconds, so the detector's frame skipping, fallback model and
pause are part of the run; a node that exits or changes pid (a restart) fails it.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from edge_tracker.tools.procs import (FALLBACK_MODEL, PROJECT_MODEL, BackgroundSpinner, Child,
                                      default_model, isolate, node_command, process_tree,
                                      stop_all, tree_rss_kb)

NODES = ('camera', 'detector', 'tracker')
# One temperature per throttle level of the thermal node's defaults (warm 70, hot 80,
# critical 90 C): normal, warm, hot, critical, and back down.
THERMAL_STEPS_C = (45.0, 75.0, 85.0, 95.0, 85.0, 75.0)


class SimulatedZone:
    """A thermal_zone directory whose temperature the soak sets (written atomically)."""

    def __init__(self, root: str) -> None:
        self.root = root
        zone = os.path.join(root, 'thermal_zone0')
        os.makedirs(zone, exist_ok=True)
        with open(os.path.join(zone, 'type'), 'w') as f:
            f.write('soak-thermal\n')
        self.temp = os.path.join(zone, 'temp')
        self.set(THERMAL_STEPS_C[0])

    def set(self, celsius: float) -> None:
        with open(self.temp + '.tmp', 'w') as f:
            f.write(f'{int(celsius * 1000)}\n')
        os.replace(self.temp + '.tmp', self.temp)


def open_fds(pid: int) -> Optional[int]:
    """Open fds of a node and its inference processes (None once the node is gone)."""
    total = None
    for p in process_tree(pid):
        try:
            total = (total or 0) + len(os.listdir(f'/proc/{p}/fd'))
        except OSError:
            if p == pid:
                return None
    return total


def start(name: str, params: Dict[str, object], log_dir: str) -> Child:
    return Child(name, node_command(f'{name}_node', params),
                 os.path.join(log_dir, f'{name}.log'))


class Counter:
    """Counts camera_info (one per frame the camera publishes) and tracks, on a context of
    its own spun in the background."""

    def __init__(self) -> None:
        import rclpy
        from sensor_msgs.msg import CameraInfo
        from std_msgs.msg import UInt8
        from vision_msgs.msg import Detection2DArray

        from edge_tracker.qos import image_qos, latched_qos, results_qos
        self.spinner = BackgroundSpinner()
        self.node = rclpy.create_node('soak_counter', context=self.spinner.context)
        self.frames = 0
        self.tracks = 0
        self.detections = 0
        self.counting = False
        self.node.create_subscription(CameraInfo, 'camera_info', self._on_info,
                                      image_qos('best_effort', 10))
        self.node.create_subscription(Detection2DArray, 'tracks', self._on_tracks, results_qos())
        self.node.create_subscription(Detection2DArray, 'detections', self._on_detections,
                                      results_qos())
        self.levels_seen = set()
        self.node.create_subscription(UInt8, 'thermal/throttle',
                                      lambda m: self.levels_seen.add(int(m.data)), latched_qos())
        self.spinner.executor.add_node(self.node)

    def _on_info(self, _msg) -> None:
        if self.counting:
            self.frames += 1

    def _on_tracks(self, _msg) -> None:
        self.tracks += 1

    def _on_detections(self, _msg) -> None:
        self.detections += 1

    def close(self) -> None:
        self.spinner.close()


def summarize(samples: List[Dict], warm_frames: int) -> Dict[str, object]:
    """Per node: RSS and fds at the end of the warm-up and at the end, growth, and the trend
    (slope of a least-squares line of RSS over frames after the warm-up)."""
    after = [s for s in samples if s['frames'] >= warm_frames]
    if len(after) < 2:
        after = samples[-2:]
    first, last = after[0], after[-1]
    frames = np.array([s['frames'] for s in after], dtype=np.float64)
    rss = np.array([s['rss_kb'] for s in after], dtype=np.float64)
    slope = float(np.polyfit(frames, rss, 1)[0]) * 1000.0 if np.ptp(frames) > 0 else 0.0
    return {'rss_warm_kb': first['rss_kb'], 'rss_end_kb': last['rss_kb'],
            'growth_pct': 100.0 * (last['rss_kb'] - first['rss_kb']) / first['rss_kb'],
            'trend_kb_per_1000_frames': slope,
            'fds_warm': first['fds'], 'fds_end': last['fds'],
            'fds_max': max(s['fds'] for s in after),
            'samples_after_warmup': len(after)}


def print_table(summary: Dict[str, Dict], frames: int, warm_frames: int, seconds: float) -> None:
    print(f'\nsoak: {frames} frames in {seconds:.0f} s ({frames / max(seconds, 1e-9):.1f} fps); '
          f'warm-up until frame {warm_frames}')
    head = (f'{"node":<10}{"RSS warm-up":>13}{"RSS end":>11}{"growth":>9}'
            f'{"trend KB/1k fr":>16}{"fds warm-up":>13}{"fds end":>9}  verdict')
    print(head)
    print('-' * len(head))
    for name, s in summary.items():
        print(f'{name:<10}{s["rss_warm_kb"] / 1024:>10.1f} MB{s["rss_end_kb"] / 1024:>8.1f} MB'
              f'{s["growth_pct"]:>+8.2f}%{s["trend_kb_per_1000_frames"]:>+16.1f}'
              f'{s["fds_warm"]:>13d}{s["fds_end"]:>9d}  {s["verdict"]}')


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--frames', type=int, default=20000, help='camera frames to run (20000)')
    ap.add_argument('--fps', type=float, default=60.0, help='camera rate (60)')
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--height', type=int, default=480)
    ap.add_argument('--model', default='', help=f'detector model ({PROJECT_MODEL} when '
                    f'installed or in models/, else {FALLBACK_MODEL})')
    ap.add_argument('--imgsz', type=int, default=160, help='detector input size (160)')
    ap.add_argument('--warmup', type=float, default=0.1,
                    help='share of the frames before memory is judged (0.1)')
    ap.add_argument('--max-growth', type=float, default=2.0,
                    help='largest RSS growth after the warm-up, in percent (2)')
    ap.add_argument('--period', type=float, default=1.0, help='sampling period in s (1)')
    ap.add_argument('--json', default='soak.json', help='where the samples go (soak.json)')
    ap.add_argument('--domain', type=int, default=None,
                    help='ROS_DOMAIN_ID (default 1 + pid %% 100)')
    ap.add_argument('--startup-timeout', type=float, default=180.0,
                    help='longest wait for the first tracks, in s (180)')
    ap.add_argument('--thermal-cycle', type=float, default=0.0,
                    help='seconds per step of a simulated zone going through every throttle '
                         'level (0: no thermal monitor)')
    args = ap.parse_args(argv)
    if args.frames < 10 or not 0 <= args.warmup < 1:
        ap.error('need --frames >= 10 and 0 <= --warmup < 1')

    domain = isolate(args.domain)
    model = args.model or default_model()
    log_dir = tempfile.mkdtemp(prefix='soak-')
    print(f'soak: domain {domain}, model {model} at imgsz {args.imgsz}, camera '
          f'{args.width}x{args.height} at {args.fps:g} fps, logs in {log_dir}', flush=True)
    procs = {
        'camera': start('camera', {'source': 'synthetic', 'fps': float(args.fps),
                                   'width': args.width, 'height': args.height}, log_dir),
        # With the thermal cycle, hot and critical switch to a 128 px fallback of the model.
        'detector': start('detector', {'model': model, 'imgsz': args.imgsz, 'threads': 1,
                                       **({'fallback_imgsz': 128} if args.thermal_cycle > 0
                                          else {})}, log_dir),
        'tracker': start('tracker', {'frame_rate': float(args.fps)}, log_dir),
    }
    zone = None
    if args.thermal_cycle > 0:
        zone = SimulatedZone(os.path.join(log_dir, 'thermal'))
        procs['thermal'] = start('thermal', {'sysfs_root': zone.root, 'period_s': 0.5},
                                 log_dir)
    pids = {name: p.pid for name, p in procs.items()}
    counter = Counter()
    samples: Dict[str, List[Dict]] = {n: [] for n in procs}
    warm_frames = int(args.frames * args.warmup)
    failure = ''
    t_start = time.monotonic()
    try:
        deadline = time.monotonic() + args.startup_timeout
        # Predicted tracks flow before the model is loaded: wait for real detections.
        while counter.detections == 0 or counter.tracks == 0:
            dead = [n for n, p in procs.items() if not p.alive()]
            if dead or time.monotonic() > deadline:
                failure = f'{", ".join(dead)} exited' if dead else 'no detections came out'
                break
            time.sleep(0.2)
        counter.counting = True
        t_start = time.monotonic()
        step = -1
        last_progress, last_frames = time.monotonic(), -1
        while not failure and counter.frames < args.frames:
            now = time.monotonic()
            if zone is not None and int((now - t_start) / args.thermal_cycle) != step:
                step = int((now - t_start) / args.thermal_cycle)
                zone.set(THERMAL_STEPS_C[step % len(THERMAL_STEPS_C)])
            for name, p in procs.items():
                rss, fds = tree_rss_kb(p.pid), open_fds(p.pid)
                if not p.alive() or rss is None or fds is None or p.pid != pids[name]:
                    failure = f'{name} exited with code {p.popen.poll()}'
                    break
                samples[name].append({'t': round(now - t_start, 3), 'frames': counter.frames,
                                      'detections': counter.detections,
                                      'tracks': counter.tracks, 'rss_kb': rss, 'fds': fds})
            if counter.frames != last_frames:
                last_progress, last_frames = now, counter.frames
            elif now - last_progress > 30:
                failure = 'no camera frames for 30 s'
            if len(samples['camera']) % 10 == 1:
                print(f'soak: {counter.frames}/{args.frames} frames, {counter.detections} '
                      f'detections, {counter.tracks} tracks', flush=True)
            time.sleep(max(0.0, args.period - (time.monotonic() - now)))
    except KeyboardInterrupt:
        failure = 'interrupted'
    finally:
        seconds = time.monotonic() - t_start
        codes = dict(zip(procs, stop_all(list(procs.values()))))
        counter.close()

    summary, passed = {}, not failure
    if all(len(s) >= 2 for s in samples.values()):
        for name in samples:
            s = summarize(samples[name], warm_frames)
            reasons = []
            if s['growth_pct'] >= args.max_growth:
                reasons.append(f'RSS +{s["growth_pct"]:.1f}%')
            if s['fds_end'] > s['fds_warm']:
                reasons.append(f'fds {s["fds_warm"]} -> {s["fds_end"]}')
            s['verdict'] = 'LEAK? ' + ', '.join(reasons) if reasons else 'ok'
            passed &= not reasons
            summary[name] = s
        print_table(summary, counter.frames, warm_frames, seconds)
    elif not failure:
        failure = 'too few samples (raise --frames or lower --period)'
    unclean = {n: c for n, c in codes.items() if c != 0}
    if unclean and not failure:
        failure = f'unclean exit: {unclean}'
    levels = sorted(counter.levels_seen)
    if zone is not None:
        print(f'soak: throttle levels seen: {levels} (thermal zone stepped every '
              f'{args.thermal_cycle:g} s)')
        if levels != [0, 1, 2, 3] and not failure:
            failure = f'the thermal cycle did not reach every level: {levels}'
    report = {'args': vars(args), 'model': model, 'domain': domain, 'log_dir': log_dir,
              'frames': counter.frames, 'tracks': counter.tracks,
              'detections': counter.detections, 'seconds': seconds,
              'warmup_frames': warm_frames, 'exit_codes': codes, 'failure': failure,
              'throttle_levels_seen': levels, 'pids': pids,
              'passed': passed and not failure, 'summary': summary, 'samples': samples}
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f'soak: samples written to {args.json}')
    if failure:
        print(f'soak: FAILED: {failure} (logs in {log_dir})', file=sys.stderr)
        return 2
    print('soak: ' + ('no leak found' if passed else
                      f'FAILED: memory or fds grew after the warm-up (limit {args.max_growth}%)'))
    return 0 if passed else 1


if __name__ == '__main__':
    sys.exit(main())
