"""`make demo`: the whole pipeline on this machine with no camera and no downloads.

The pi profile's nodes run in one process on the synthetic scene with the project's own model,
while a simulated thermal zone heats up, touches critical and cools down so the governor can be
seen at work. The run is counted in inferred frames from the moment the model is ready, so a
slow or busy machine shows the same story, only slower (up to --time-limit). Prints live
progress; leaves an annotated video, PNG snapshots and the tracks (JSON lines).

    python -m edge_tracker.tools.demo [--inferred 150] [--out out/demo] [--real-thermal]
"""

import argparse
import os
import sys
import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from edge_tracker.core.governor import LEVEL_NAMES
from edge_tracker.core.launch_plan import make_plan
from edge_tracker.node_main import exit_now, share_the_interpreter
from edge_tracker.nodes.pipeline import make_nodes
from edge_tracker.paths import share_directory
from edge_tracker.tools.recorder import Recorder

DEFAULT_MODEL = 'edge_tracker_shapes.pt'
CRITICAL_AT = 0.6     # share of the inferred frames after which the zone turns critical
CRITICAL_C = 86.0


def heat_schedule(progress: float) -> float:
    """°C of the simulated zone over the share of frames inferred: warm, hot (up to the
    critical phase, which demo() holds for a few seconds: inference pauses there, so progress
    cannot drive it), then cool."""
    points = [(0.0, 45.0), (0.3, 65.0), (0.45, 72.0), (0.55, 80.0), (CRITICAL_AT, 80.0),
              (CRITICAL_AT + 1e-9, 60.0), (1.0, 50.0)]
    for (p0, t0), (p1, t1) in zip(points, points[1:]):
        if progress <= p1:
            return t0 + (t1 - t0) * (progress - p0) / (p1 - p0)
    return points[-1][1]


class HeatPlan:
    """The zone's temperature now: heat_schedule() of the progress, with the critical phase
    held for `critical_s` seconds when the progress first reaches CRITICAL_AT."""

    def __init__(self, critical_s: float) -> None:
        self.critical_s = critical_s
        self.critical_until = None

    def temperature(self, progress: float, now: float) -> float:
        if progress >= CRITICAL_AT and self.critical_until is None:
            self.critical_until = now + self.critical_s
        if self.critical_until is None:
            return heat_schedule(progress)
        if now < self.critical_until:
            return CRITICAL_C
        return heat_schedule(max(progress, CRITICAL_AT + 1e-6))   # cooling from here on


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--inferred', type=int, default=150,
                        help='frames to infer, counted once the model is ready (150)')
    parser.add_argument('--time-limit', type=float, default=600.0,
                        help='seconds after the model is ready before a machine too slow to '
                             'infer them is reported (600)')
    parser.add_argument('--critical-s', type=float, default=3.0,
                        help='seconds the simulated zone stays critical (3)')
    parser.add_argument('--fps', type=float, default=15.0, help='synthetic camera rate')
    parser.add_argument('--out', default='out/demo', help='output folder')
    parser.add_argument('--profile', default='pi')
    parser.add_argument('--model', default='', help=f'detector model (default {DEFAULT_MODEL})')
    parser.add_argument('--real-thermal', action='store_true',
                        help="read this machine's thermal zones instead of a simulated one")
    args = parser.parse_args(argv)
    if args.inferred < 1:
        parser.error('--inferred must be at least 1')

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
        # One inference thread: a pool of two on a 2-core machine that is busy with anything
        # else stalls at every parallel region (measured under load: ~1 Hz with 2, 3-7 Hz with 1).
        'detector': {'device': 'cpu', 'imgsz': 320, 'threads': 1},
        'thermal_monitor': {} if args.real_thermal else {
            'sysfs_root': os.path.join(out, 'thermal'), 'period_s': 0.5},
    }
    for node in plan.nodes:
        node.overrides.update(extra.get(node.name, {}))
    for key, value in plan.env.items():
        os.environ.setdefault(key, value)

    share_the_interpreter()
    rclpy.init(args=['--ros-args', '--log-level', 'warn'])
    print(f'edge_tracker demo: profile {args.profile}, synthetic camera {args.fps:g} fps, '
          f'model {os.path.basename(model)}; loading the model ...', flush=True)
    t_load = time.monotonic()
    nodes = make_nodes(plan)   # returns once the detector's model is loaded and warmed up
    recorder = Recorder(tracks_path=os.path.join(out, 'tracks.jsonl'),
                        video_path=os.path.join(out, 'annotated.avi'), video_fps=args.fps,
                        snapshot_every=20, snapshot_prefix=os.path.join(out, 'snapshots', 'frame_'))
    # One executor thread for every node, as the pipeline executable runs them.
    executor = SingleThreadedExecutor()
    for node in nodes + [recorder]:
        executor.add_node(node)
    spinner = threading.Thread(target=spin, args=(executor,), daemon=True)
    spinner.start()
    print(f'model ready in {time.monotonic() - t_load:.1f} s; running until {args.inferred} '
          f'frames are inferred (at most {args.time_limit:.0f} s) -> {out}', flush=True)
    start = time.monotonic()
    inferred0 = recorder.inferred
    heat = HeatPlan(args.critical_s)
    slow = False
    next_print = start + 1.0
    try:
        while True:
            now = time.monotonic()
            done = recorder.inferred - inferred0
            progress = min(1.0, done / args.inferred)
            if done >= args.inferred:
                break
            if now - start > args.time_limit:
                slow = True
                break
            if not args.real_thermal:
                set_temp(heat.temperature(progress, now))
            if now >= next_print:
                next_print += 1.0
                lat = recorder.latency_ms()
                temp = f'{recorder.temperature:5.1f} C' if recorder.temperature is not None \
                    else '  n/a'
                ids = {r['id'] for rows in list(recorder.tracks.values())[-1:] for r in rows}
                print(f'inferred {done:4d}/{args.inferred}  '
                      f'camera {recorder.camera_rate.rate():4.1f} fps  '
                      f'tracks {recorder.tracks_rate.rate():4.1f} Hz  '
                      f'inference {recorder.detections_rate.rate():4.1f} Hz  '
                      f'latency p50 {lat["p50"]:5.1f} ms  temp {temp}  '
                      f'level {recorder.level} ({LEVEL_NAMES[recorder.level]})  '
                      f'objects {len(ids)}', flush=True)
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        seconds = time.monotonic() - start
        stop(executor, spinner, nodes, recorder)
    ids = {r['id'] for rows in recorder.tracks.values() for r in rows}
    lat = recorder.latency_ms()
    done = recorder.inferred - inferred0
    print(f'\ndone: {done} frames inferred in {seconds:.0f} s ({recorder.frames} camera frames), '
          f'{len(recorder.tracks)} tracks messages, {len(ids)} track ids, '
          f'latency p50 {lat["p50"]:.1f} ms p95 {lat["p95"]:.1f} ms')
    for change in recorder.level_changes:
        print(f'  thermal: {change}')
    print(f'outputs:\n  {os.path.join(out, "annotated.avi")} ({recorder.annotated} frames)\n'
          f'  {os.path.join(out, "tracks.jsonl")}\n  {os.path.join(out, "snapshots")}/ '
          f'({len(recorder.snapshots)} PNG)', flush=True)
    if slow:
        print(f'demo: this machine inferred {done} of {args.inferred} frames in '
              f'{args.time_limit:.0f} s after the model was ready; it is too slow (or too busy) '
              f'for this demo. Try --inferred {max(1, done)} or a longer --time-limit.',
              file=sys.stderr)
        return 1
    return 0 if ids and recorder.annotated else 1


def spin(executor) -> None:
    try:
        executor.spin()
    except ExternalShutdownException:   # the demo's own rclpy.try_shutdown()
        pass
    except Exception:
        # A callback under way when the context shut down fails on its invalidated
        # publisher: the stop was asked for (as node_main.run treats it).
        if rclpy.ok():
            raise


def stop(executor, spinner, nodes, recorder) -> None:
    """Shuts ROS down, then waits for the nodes' own threads: a capture or inference thread
    still running native code while the interpreter tears down aborts the process
    ("terminate called without an active exception")."""
    rclpy.try_shutdown()
    spinner.join(timeout=5)
    executor.shutdown(timeout_sec=1.0)
    for node in nodes + [recorder]:
        getattr(node, 'close', lambda: None)()
    for node in nodes:
        pool = getattr(node, 'pool', None)   # the detector's inference workers
        if pool is not None:
            pool.stop(timeout=30.0)   # the inferences in flight end; nothing new starts
    for node in nodes + [recorder]:
        node.destroy_node()


if __name__ == '__main__':
    # As the node executables end: no interpreter teardown under native threads.
    exit_now(main())
