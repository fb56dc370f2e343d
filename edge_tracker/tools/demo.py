"""`make demo`: the whole pipeline on this machine with no camera and no downloads.

The pi profile's nodes run in one process on the synthetic scene with the project's own model,
while a simulated thermal zone heats up and cools down so the governor can be seen at work.
Prints live progress; leaves an annotated video, snapshots and the tracks (JSON lines).

    python -m edge_tracker.tools.demo [--frames 450] [--out out/demo] [--real-thermal]
"""

import argparse
import os
import sys
import threading
import time

import rclpy
from rclpy.executors import MultiThreadedExecutor

from edge_tracker.core.governor import LEVEL_NAMES
from edge_tracker.core.launch_plan import make_plan
from edge_tracker.node_main import share_the_interpreter
from edge_tracker.nodes.pipeline import make_nodes
from edge_tracker.paths import share_directory
from edge_tracker.tools.recorder import Recorder

DEFAULT_MODEL = 'edge_tracker_shapes.pt'


def heat_schedule(progress: float) -> float:
    """°C of the simulated zone over the run: warm, hot, a touch of critical, then cool."""
    points = [(0.0, 45.0), (0.25, 65.0), (0.35, 72.0), (0.5, 80.0), (0.6, 86.0),
              (0.68, 86.0), (0.8, 60.0), (1.0, 50.0)]
    for (p0, t0), (p1, t1) in zip(points, points[1:]):
        if progress <= p1:
            return t0 + (t1 - t0) * (progress - p0) / (p1 - p0)
    return points[-1][1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=450, help='camera frames to run')
    parser.add_argument('--fps', type=float, default=15.0, help='synthetic camera rate')
    parser.add_argument('--out', default='out/demo', help='output folder')
    parser.add_argument('--profile', default='pi')
    parser.add_argument('--model', default='', help=f'detector model (default {DEFAULT_MODEL})')
    parser.add_argument('--real-thermal', action='store_true',
                        help="read this machine's thermal zones instead of a simulated one")
    args = parser.parse_args(argv)

    out = os.path.abspath(args.out)
    os.makedirs(os.path.join(out, 'snapshots'), exist_ok=True)
    share = share_directory()
    model = args.model or os.path.join(share, 'models', DEFAULT_MODEL)
    if not os.path.exists(model) and not model.endswith('.yaml'):
        print(f'demo: model {model} not found', file=sys.stderr)
        return 2
    zone_dir = os.path.join(out, 'thermal', 'thermal_zone0')
    os.makedirs(zone_dir, exist_ok=True)
    with open(os.path.join(zone_dir, 'type'), 'w') as f:
        f.write('demo-thermal\n')
    temp_file = os.path.join(zone_dir, 'temp')

    def set_temp(celsius: float) -> None:
        with open(temp_file + '.tmp', 'w') as f:
            f.write(f'{int(celsius * 1000)}\n')
        os.replace(temp_file + '.tmp', temp_file)  # never a half-written file

    set_temp(heat_schedule(0.0))
    plan = make_plan(share, args.profile, source='synthetic', model=model)
    extra = {
        'camera': {'fps': args.fps, 'width': 640, 'height': 480},
        'detector': {'device': 'cpu', 'imgsz': 320, 'threads': 2},
        'thermal_monitor': {} if args.real_thermal else {
            'sysfs_root': os.path.join(out, 'thermal'), 'period_s': 0.5},
    }
    for node in plan.nodes:
        node.overrides.update(extra.get(node.name, {}))
    for key, value in plan.env.items():
        os.environ.setdefault(key, value)

    share_the_interpreter()
    rclpy.init(args=['--ros-args', '--log-level', 'warn'])
    nodes = make_nodes(plan)
    recorder = Recorder(tracks_path=os.path.join(out, 'tracks.jsonl'),
                        video_path=os.path.join(out, 'annotated.avi'), video_fps=args.fps,
                        snapshot_every=60, snapshot_prefix=os.path.join(out, 'snapshots', 'frame_'))
    executor = MultiThreadedExecutor(num_threads=4)
    for node in nodes + [recorder]:
        executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    print(f'edge_tracker demo: profile {args.profile}, synthetic camera {args.fps:g} fps, '
          f'model {os.path.basename(model)}; {args.frames} frames -> {out}', flush=True)
    start = time.monotonic()
    try:
        while recorder.frames < args.frames:
            time.sleep(1.0)
            if not args.real_thermal:
                set_temp(heat_schedule(recorder.frames / args.frames))
            lat = recorder.latency_ms()
            temp = f'{recorder.temperature:5.1f} C' if recorder.temperature is not None else '  n/a'
            ids = {r['id'] for rows in list(recorder.tracks.values())[-1:] for r in rows}
            print(f'frames {recorder.frames:4d}/{args.frames}  camera {recorder.camera_rate.rate():4.1f} fps  '
                  f'tracks {recorder.tracks_rate.rate():4.1f} Hz  '
                  f'inference {recorder.detections_rate.rate():4.1f} Hz  '
                  f'latency p50 {lat["p50"]:5.1f} ms  temp {temp}  '
                  f'level {recorder.level} ({LEVEL_NAMES[recorder.level]})  '
                  f'objects {len(ids)}', flush=True)
            if time.monotonic() - start > 30 + 5 * args.frames / args.fps:
                print('demo: the pipeline is not keeping up; stopping', file=sys.stderr)
                break
    except KeyboardInterrupt:
        pass
    finally:
        rclpy.try_shutdown()
        spinner.join(timeout=5)
        for node in nodes + [recorder]:
            getattr(node, 'close', lambda: None)()
            node.destroy_node()
    ids = {r['id'] for rows in recorder.tracks.values() for r in rows}
    lat = recorder.latency_ms()
    print(f'\ndone: {recorder.frames} frames in {time.monotonic() - start:.0f} s, '
          f'{len(recorder.tracks)} tracks messages, {len(ids)} track ids, '
          f'latency p50 {lat["p50"]:.1f} ms p95 {lat["p95"]:.1f} ms')
    for change in recorder.level_changes:
        print(f'  thermal: {change}')
    print(f'outputs:\n  {os.path.join(out, "annotated.avi")} ({recorder.annotated} frames)\n'
          f'  {os.path.join(out, "tracks.jsonl")}\n  {os.path.join(out, "snapshots")}/ '
          f'({len(recorder.snapshots)} PNG)')
    return 0 if recorder.tracks and recorder.annotated else 1


if __name__ == '__main__':
    sys.exit(main())
