"""Trains the project's own small detector on the synthetic scenes, offline, on a CPU:

    python -m edge_tracker.tools.train_model --out models

1. renders a YOLO dataset from `SyntheticScene` into a scratch directory (never the repo):
   train, val (picks best.pt during training) and test (held out, reported) come from disjoint
   seed ranges; labels are `ground_truth()` boxes, so objects under the scene's
   `min_visibility` are unlabelled exactly as they are absent from the MOT ground truth;
2. trains a YOLO from its architecture yaml (random init, nothing downloaded);
3. validates best.pt on the held-out test split and prints `held-out mAP50: ...`;
4. if mAP50 reaches --min-map50, copies best.pt to OUT/edge_tracker_shapes.pt with
   OUT/edge_tracker_shapes.json (classes, command, seeds, sizes, metrics, versions).

Scene seeds below 1000 are never used here, so demos and tracker evaluations on such seeds run
on scenes the model has not seen.
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
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from edge_tracker.core.synthetic import CLASS_NAMES, SyntheticScene

MODEL_NAME = 'edge_tracker_shapes'
MAX_MODEL_BYTES = 10 * 1024 * 1024


def scene_options(seed: int) -> Dict[str, object]:
    """Scene settings for one dataset seed: the defaults varied around, so the model does not
    learn one resolution, density, background or noise level."""
    rng = np.random.default_rng([seed, 77])
    width, height = ((640, 480), (640, 480), (640, 480), (800, 450))[int(rng.integers(4))]
    return {
        'width': width, 'height': height, 'seed': seed,
        'num_objects': int(rng.integers(3, 8)),
        'spawn_interval': float(rng.uniform(30, 60)),
        'noise': int(rng.integers(2, 11)),
        'texture': float(rng.uniform(0.4, 1.6)),
        'clutter': int(rng.integers(0, 25)),
        'shake': float((0.0, 0.0, 2.0, 4.0)[int(rng.integers(4))]),
        'size_range': (0.06, 0.24),
    }


def frame_indices(count: int, stride: int, start: int = 15) -> List[int]:
    return [start + k * stride for k in range(count)]


def render_split(root: Path, split: str, seeds: Sequence[int], frames: Sequence[int]) -> Dict:
    """Writes images/<split>/*.jpg and labels/<split>/*.txt (class cx cy w h, normalised)."""
    img_dir, lbl_dir = root / 'images' / split, root / 'labels' / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    n_images = n_boxes = 0
    buf = None
    for seed in seeds:
        scene = SyntheticScene(**scene_options(seed))
        w, h = scene.width, scene.height
        for index in frames:
            buf = scene.render(index, buf)
            stem = f's{seed}_f{index:05d}'
            cv2.imwrite(str(img_dir / f'{stem}.jpg'), buf, [cv2.IMWRITE_JPEG_QUALITY, 92])
            lines = []
            for b in scene.ground_truth(index):
                lines.append(f'{b.class_id} {(b.x1 + b.x2) / 2 / w:.6f} {(b.y1 + b.y2) / 2 / h:.6f}'
                             f' {(b.x2 - b.x1) / w:.6f} {(b.y2 - b.y1) / h:.6f}')
            (lbl_dir / f'{stem}.txt').write_text('\n'.join(lines) + ('\n' if lines else ''))
            n_images += 1
            n_boxes += len(lines)
    return {'seeds': list(seeds), 'frames': list(frames), 'images': n_images, 'boxes': n_boxes}


def held_out_split(root: Path, seeds: int = 10, frames: int = 15, stride: int = 19) -> Dict:
    """The test split: scenes 3000, 3001, ... that training and validation never see."""
    return render_split(root, 'test', range(3000, 3000 + seeds),
                        frame_indices(frames, stride, start=25))


def write_data_yaml(work: Path, data_root: Path, train: str = 'images/train',
                    val: str = 'images/val') -> Path:
    path = work / 'shapes.yaml'
    names = '\n'.join(f'  {i}: {n}' for i, n in enumerate(CLASS_NAMES))
    path.write_text(f'path: {data_root}\ntrain: {train}\nval: {val}\n'
                    f'test: images/test\nnames:\n{names}\n')
    return path


def validate(weights: str, data_yaml: Path, imgsz: int, batch: int, project: Path) -> Dict:
    """mAP50, mAP50-95 and per-class AP50 of `weights` on the test split."""
    from ultralytics import YOLO
    metrics = YOLO(str(weights)).val(data=str(data_yaml), split='test', imgsz=imgsz,
                                     batch=batch, device='cpu', plots=False, workers=0,
                                     project=str(project), name='test', exist_ok=True)
    return {'map50': float(metrics.box.map50), 'map50_95': float(metrics.box.map),
            'per_class': {CLASS_NAMES[int(c)]: round(float(v), 4)
                          for c, v in zip(metrics.box.ap_class_index, metrics.box.ap50)}}


def _versions() -> Dict[str, str]:
    import torch
    import torchvision
    import ultralytics
    return {'python': platform.python_version(), 'torch': torch.__version__,
            'torchvision': torchvision.__version__, 'ultralytics': ultralytics.__version__,
            'numpy': np.__version__, 'opencv': cv2.__version__}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog='python -m edge_tracker.tools.train_model',
                                 description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', required=True, help=f'directory for {MODEL_NAME}.pt and .json')
    ap.add_argument('--work', default=None,
                    help='scratch directory for dataset and runs (default: a new temp dir)')
    ap.add_argument('--keep-work', action='store_true', help='do not delete the scratch dir')
    ap.add_argument('--arch', default='yolov8n.yaml', help='architecture yaml (random init)')
    ap.add_argument('--epochs', type=int, default=35)
    ap.add_argument('--imgsz', type=int, default=320)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--seed', type=int, default=0, help='training seed (init, augmentation)')
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--workers', type=int, default=0, help='dataloader worker processes')
    ap.add_argument('--train-seeds', type=int, default=20, help='scenes 1000, 1001, ...')
    ap.add_argument('--train-frames', type=int, default=16, help='frames per train scene')
    ap.add_argument('--val-seeds', type=int, default=6, help='scenes 2000, ...')
    ap.add_argument('--val-frames', type=int, default=10)
    ap.add_argument('--test-seeds', type=int, default=10, help='held-out scenes 3000, ...')
    ap.add_argument('--test-frames', type=int, default=15)
    ap.add_argument('--stride', type=int, default=19, help='frames between dataset frames')
    ap.add_argument('--min-map50', type=float, default=0.9,
                    help='do not write the model below this held-out mAP50')
    args = ap.parse_args(argv)

    # Before importing ultralytics: no network look-ups, and the thread count we ask for.
    os.environ.setdefault('YOLO_OFFLINE', '1')
    os.environ['OMP_NUM_THREADS'] = str(args.threads)
    import torch
    import ultralytics.utils.torch_utils as ultra_torch_utils
    from ultralytics import YOLO
    # select_device() resets torch to (cores - 1) threads, i.e. 1 on a 2-core board: ~2x slower.
    ultra_torch_utils.NUM_THREADS = args.threads
    torch.set_num_threads(args.threads)

    out_dir = Path(args.out).resolve()
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix='et_train_'))
    work.mkdir(parents=True, exist_ok=True)
    data_root = work / 'dataset'
    t_start = time.monotonic()
    splits = {
        'train': render_split(data_root, 'train', range(1000, 1000 + args.train_seeds),
                              frame_indices(args.train_frames, args.stride)),
        'val': render_split(data_root, 'val', range(2000, 2000 + args.val_seeds),
                            frame_indices(args.val_frames, args.stride, start=25)),
        'test': held_out_split(data_root, args.test_seeds, args.test_frames, args.stride),
    }
    data_yaml = write_data_yaml(work, data_root)
    t_data = time.monotonic() - t_start
    print(f'dataset in {work}: ' + ', '.join(f'{k} {v["images"]} images / {v["boxes"]} boxes'
                                             for k, v in splits.items()) + f' ({t_data:.0f} s)',
          flush=True)

    model = YOLO(args.arch)
    t0 = time.monotonic()
    model.train(data=str(data_yaml), epochs=args.epochs, imgsz=args.imgsz, batch=args.batch,
                device='cpu', workers=args.workers, seed=args.seed, deterministic=True,
                plots=False, project=str(work / 'runs'), name='train', exist_ok=True,
                amp=False, verbose=True, cache='ram',   # decode + resize each image once
                flipud=0.0)   # no vertical flips: a triangle points up
    train_s = time.monotonic() - t0
    best = Path(model.trainer.best)
    print(f'training took {train_s / 60:.1f} min; best weights {best}', flush=True)

    held_out = validate(best, data_yaml, args.imgsz, args.batch, work / 'runs')
    map50, map5095, per_class = held_out['map50'], held_out['map50_95'], held_out['per_class']
    print(f'held-out mAP50: {map50:.3f} (mAP50-95 {map5095:.3f}) on '
          f'{splits["test"]["images"]} images of unseen scenes; per class {per_class}', flush=True)

    status = 0
    if map50 < args.min_map50:
        print(f'mAP50 {map50:.3f} < --min-map50 {args.min_map50}: model NOT written; '
              f'dataset and runs kept in {work}', file=sys.stderr)
        return 1
    size = best.stat().st_size
    if size > MAX_MODEL_BYTES:
        print(f'{best} is {size} bytes, over {MAX_MODEL_BYTES}: model NOT written',
              file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    pt = out_dir / f'{MODEL_NAME}.pt'
    shutil.copyfile(best, pt)
    record = {
        'model': pt.name,
        'sha256': hashlib.sha256(pt.read_bytes()).hexdigest(),
        'bytes': size,
        'architecture': args.arch,
        'class_names': list(CLASS_NAMES),
        'imgsz': args.imgsz,
        'command': 'python -m edge_tracker.tools.train_model ' + shlex.join(argv),
        'training_seed': args.seed,
        'epochs': args.epochs,
        'batch': args.batch,
        'threads': args.threads,
        'dataset': {
            'generator': 'edge_tracker.core.synthetic.SyntheticScene, options per seed from '
                         'edge_tracker.tools.train_model.scene_options(seed)',
            'label_rule': 'ground_truth() boxes (amodal, clipped to the image); objects with '
                          'visibility < 0.2 unlabelled',
            **splits,
        },
        'held_out': {'split': 'test', 'mAP50': round(map50, 4), 'mAP50-95': round(map5095, 4),
                     'AP50_per_class': per_class},
        'training_minutes': round(train_s / 60, 2),
        'date': datetime.now(timezone.utc).isoformat(timespec='seconds'),
        'host': {'cpus': os.cpu_count(), 'machine': platform.machine()},
        'versions': _versions(),
    }
    (out_dir / f'{MODEL_NAME}.json').write_text(json.dumps(record, indent=2) + '\n')
    print(f'wrote {pt} ({size / 1e6:.1f} MB) and {MODEL_NAME}.json', flush=True)
    if not args.keep_work and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
