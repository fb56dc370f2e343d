"""How inference threads behave when they outnumber the cores, or share them with a busy loop.

    python -m edge_tracker.tools.thread_contention [--processes 2] [--threads 1 2] [--seconds 8]

For each thread count, `--processes` inference processes (as the detector's workers with
isolation: process) each infer the synthetic scene with that many torch threads for
`--seconds`, first alone, then beside a `while :; do :; done` process. Printed per run: the
frames all processes inferred and the p50 / p95 time per frame. This is the measurement
behind the detector capping workers x threads at the cores (core/latest.choose_workers).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np


def infer(model: str, imgsz: int, threads: int, seconds: float, start_at: float) -> Dict:
    """One process's loop: warm up, wait for the common start, infer until `seconds` pass."""
    from edge_tracker.core.detector import Detector
    from edge_tracker.core.synthetic import SyntheticScene
    detector = Detector(model, device='cpu', imgsz=imgsz, threads=threads)
    frames = [SyntheticScene(seed=1).render(i) for i in range(30)]
    while time.time() < start_at:
        time.sleep(0.01)
    times: List[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        detector.detect(frames[len(times) % len(frames)])
        times.append(time.perf_counter() - t0)
    return {'frames': len(times), 'times_ms': [1e3 * t for t in times]}


def run(model: str, imgsz: int, processes: int, threads: int, seconds: float,
        busy: bool, load_s: float = 20.0) -> Dict[str, float]:
    from edge_tracker.tools.procs import Child, json_results, kill_group, spawn
    folder = tempfile.mkdtemp(prefix='edge_tracker_thread_contention_')
    # Model loading takes seconds (load_s allowed): every process starts inferring at once.
    start_at = time.time() + load_s
    children = [Child(f'infer{i}', [sys.executable, '-m', 'edge_tracker.tools.thread_contention',
                                    '--role', 'infer', '--model', model, '--imgsz', str(imgsz),
                                    '--threads', str(threads), '--seconds', str(seconds),
                                    '--start-at', str(start_at)],
                      os.path.join(folder, f'infer{i}.log')) for i in range(processes)]
    loop = spawn(['sh', '-c', 'while :; do :; done']) if busy else None
    try:
        results = json_results(children, load_s + seconds + 100.0, 'thread_contention')
    finally:
        if loop is not None:
            kill_group(loop)
            loop.wait()
    times = [t for result in results for t in result['times_ms']]
    return {'processes': processes, 'threads': threads, 'busy_loop': busy,
            'frames': len(times), 'p50_ms': float(np.percentile(times, 50)),
            'p95_ms': float(np.percentile(times, 95))}


def describe(r: Dict[str, float], cores: int) -> str:
    return (f"{r['processes']} processes x {r['threads']} thread(s) on {cores} cores"
            f"{', busy loop beside' if r['busy_loop'] else ''}: {r['frames']} frames, "
            f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} ms per frame (p50 / p95)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default='', help='default: the project model')
    parser.add_argument('--imgsz', type=int, default=320)
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--seconds', type=float, default=8.0)
    parser.add_argument('--role', choices=('run', 'infer'), default='run', help=argparse.SUPPRESS)
    parser.add_argument('--start-at', type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == 'infer':
        print(json.dumps(infer(args.model, args.imgsz, args.threads[0], args.seconds,
                               args.start_at)), flush=True)
        return 0
    from edge_tracker.core.latest import usable_cores
    from edge_tracker.tools.procs import default_model
    model = args.model or default_model()
    cores = usable_cores()
    print(f'thread_contention: {model}, imgsz {args.imgsz}, {args.seconds:g} s per run')
    for threads in args.threads:
        for busy in (False, True):
            r = run(model, args.imgsz, args.processes, threads, args.seconds, busy)
            print('  ' + describe(r, cores), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
