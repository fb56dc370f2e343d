"""Exports the project's model as a CPU int8 .tflite (the coral profile's fallback_model):

    python -m edge_tracker.tools.export_int8_tflite --out models

1. renders calibration images from `SyntheticScene` (the training scenes' distribution:
   seeds 1000-1009) into a scratch directory;
2. exports models/edge_tracker_shapes.pt with Ultralytics `format=tflite int8=True` (static
   quantization: int8 weights and activations, float input/output), which needs `litert-torch`;
3. measures mAP50 of the .tflite and of the .pt on the held-out scenes (seeds 3000-3009, as
   train_model does) and writes OUT/edge_tracker_shapes_int8.tflite with a .json record.

`--speed MODEL.tflite` only times it against the .pt (no litert-torch needed): Detector.detect
per frame on a held-out scene, one CPU thread each, the two models taking turns frame by frame
so that other load on the machine slows both alike.

The result runs on any CPU through a TFLite runtime (ai-edge-litert, which Ultralytics loads
for a .tflite). It is not compiled for the Edge TPU: that needs Google's edgetpu_compiler.

`litert-torch` is about 1 GB and is only needed here, so keep it out of the robot's and the
development environment, e.g. a scratch venv that sees the development one's packages:

    python3.11 -m venv /tmp/litert && echo "$VIRTUAL_ENV/lib/python3.11/site-packages" \\
        > /tmp/litert/lib/python3.11/site-packages/dev_env.pth
    /tmp/litert/bin/pip install litert-torch
    PYTHONPATH=. /tmp/litert/bin/python -m edge_tracker.tools.export_int8_tflite --out models
"""

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

from edge_tracker.tools.train_model import (MODEL_NAME, frame_indices, held_out_split,
                                            render_split, validate, write_data_yaml)

REPO = Path(__file__).resolve().parents[2]
OUT_NAME = f'{MODEL_NAME}_int8.tflite'
CALIBRATION_SEEDS = range(1000, 1010)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog='python -m edge_tracker.tools.export_int8_tflite',
                                 description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', help=f'directory for {OUT_NAME} and its .json')
    ap.add_argument('--weights', default=str(REPO / 'models' / f'{MODEL_NAME}.pt'))
    ap.add_argument('--imgsz', type=int, default=320, help='fixed input size of the export')
    ap.add_argument('--frames', type=int, default=30,
                    help='calibration frames per scene (Ultralytics recommends 300 images)')
    ap.add_argument('--work', default=None, help='scratch directory (default: a temp dir)')
    ap.add_argument('--speed', default='', metavar='TFLITE',
                    help='only time this .tflite against --weights (see above)')
    args = ap.parse_args(argv)
    if args.speed:
        return speed(args.speed, args.weights, args.imgsz)
    if not args.out:
        ap.error('--out is required (or --speed)')
    try:
        import litert_torch  # noqa: F401
    except ImportError:
        print('export_int8_tflite: litert-torch is not installed here; see this module\'s '
              'docstring for a scratch environment', file=sys.stderr)
        return 2

    os.environ.setdefault('YOLO_OFFLINE', '1')
    import ultralytics
    from ultralytics import YOLO

    out_dir = Path(args.out).resolve()
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix='et_int8_'))
    data_root = work / 'dataset'
    calibration = render_split(data_root, 'calibration', CALIBRATION_SEEDS,
                               frame_indices(args.frames, 23))
    test = held_out_split(data_root)
    data_yaml = write_data_yaml(work, data_root, train='images/calibration',
                                val='images/calibration')
    print(f'calibration: {calibration["images"]} rendered images in {data_root}', flush=True)

    weights = work / Path(args.weights).name   # the export lands beside the weights
    shutil.copyfile(args.weights, weights)
    t0 = time.monotonic()
    exported = Path(YOLO(str(weights)).export(format='tflite', int8=True, imgsz=args.imgsz,
                                              data=str(data_yaml), device='cpu'))
    export_s = time.monotonic() - t0
    print(f'exported {exported} in {export_s:.0f} s', flush=True)

    held_out = {name: validate(path, data_yaml, args.imgsz, 1, work / 'runs')
                for name, path in (('int8_tflite', exported), ('pt', weights))}
    for name, m in held_out.items():
        print(f'held-out mAP50 {name}: {m["map50"]:.3f} (mAP50-95 {m["map50_95"]:.3f})',
              flush=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / OUT_NAME
    shutil.copyfile(exported, target)
    record = {
        'model': target.name,
        'sha256': hashlib.sha256(target.read_bytes()).hexdigest(),
        'bytes': target.stat().st_size,
        'from': Path(args.weights).name,
        'from_sha256': hashlib.sha256(weights.read_bytes()).hexdigest(),
        'imgsz': args.imgsz,
        'quantization': 'Ultralytics format=tflite int8=True via litert-torch: static, int8 '
                        'weights and activations, float32 input and output',
        'command': 'python -m edge_tracker.tools.export_int8_tflite ' + shlex.join(argv),
        'calibration': {'generator': 'edge_tracker.core.synthetic.SyntheticScene with '
                                     'train_model.scene_options(seed)', **calibration},
        'held_out': {'split': 'test', 'seeds': test['seeds'], 'images': test['images'],
                     **{name: {'mAP50': round(m['map50'], 4), 'mAP50-95': round(m['map50_95'], 4)}
                        for name, m in held_out.items()}},
        'export_seconds': round(export_s, 1),
        'date': datetime.now(timezone.utc).isoformat(timespec='seconds'),
        'host': {'cpus': os.cpu_count(), 'machine': platform.machine()},
        'versions': {'python': platform.python_version(), 'ultralytics': ultralytics.__version__,
                     'litert-torch': _version('litert-torch'),
                     'ai-edge-litert': _version('ai-edge-litert'), 'torch': _version('torch')},
    }
    target.with_suffix('.json').write_text(json.dumps(record, indent=2) + '\n')
    print(f'wrote {target} ({record["bytes"] / 1e6:.1f} MB) and {target.stem}.json', flush=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def speed(tflite: str, weights: str, imgsz: int, frames: int = 60) -> int:
    import numpy as np

    from edge_tracker.core.detector import Detector
    from edge_tracker.core.synthetic import SyntheticScene
    from edge_tracker.tools.train_model import scene_options
    os.environ.setdefault('YOLO_OFFLINE', '1')
    models = {'int8 .tflite': Detector(tflite, device='cpu', imgsz=imgsz, threads=1),
              '.pt': Detector(weights, device='cpu', imgsz=imgsz, threads=1)}
    scene = SyntheticScene(**scene_options(3000))
    times = {name: [] for name in models}
    boxes = dict.fromkeys(models, 0)
    for i in range(frames + 5):   # 5 frames of warm-up
        frame = scene.render(i)
        for name, detector in models.items():
            t0 = time.perf_counter()
            found = len(detector.detect(frame))
            if i >= 5:
                times[name].append(time.perf_counter() - t0)
                boxes[name] += found
    print(f'Detector.detect per frame, CPU, 1 thread, {imgsz} px, {frames} frames of scene 3000 '
          f'({os.cpu_count()} cores, {platform.machine()}):')
    for name, values in times.items():
        print(f'  {name:<13} {models[name].backend:<7} p50 {np.median(values) * 1e3:6.1f} ms, '
              f'mean {np.mean(values) * 1e3:6.1f} ms, {boxes[name] / frames:.1f} boxes/frame',
              flush=True)
    ratio = np.median(times['.pt']) / np.median(times['int8 .tflite'])
    print(f'  int8 .tflite is {ratio:.2f}x the speed of the .pt')
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return ''


if __name__ == '__main__':
    sys.exit(main())
