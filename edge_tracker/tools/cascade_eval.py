"""Quick only, cascade, and deeper only, side by side on synthetic scenes with small objects.

    python -m edge_tracker.tools.cascade_eval [--seeds 40 41] [--frames 150]

The quick stage is the model at --imgsz on the whole frame; the deeper stage is the same model
on --window-pixel crops around the quick stage's uncertain boxes (native resolution: small objects
get the pixels a downscaled pass takes from them); deeper only is the model at --deep-imgsz on the
whole frame. Each variant's boxes (score >= --conf) are tracked by the project's tracker and
scored against the scene's exact ground truth: HOTA, IDF1, detection recall on small objects
(longer side < --small pixels) and on all, precision, and the inference time per frame measured
in the same run (with how many crops and deep passes it took).
"""

import argparse
import json
import os
import tempfile
import time
from typing import Dict, List

import numpy as np
import supervision as sv

from edge_tracker.core.bytetrack import box_iou
from edge_tracker.core.cascade import Trigger, crops, from_crops, refine, regions
from edge_tracker.core.detector import Detector
from edge_tracker.core.mot import gt_rows, write_gt
from edge_tracker.core.synthetic import SyntheticScene
from edge_tracker.core.tracking import Tracker


def scene_for(seed: int, width: int, height: int, size_range) -> SyntheticScene:
    """Near and far objects: sizes spread over `size_range` of the shorter side."""
    return SyntheticScene(width, height, seed=seed, size_range=tuple(size_range), num_objects=6,
                          spawn_interval=30.0)


def _keep(dets: sv.Detections, conf: float) -> sv.Detections:
    if len(dets) == 0 or dets.confidence is None:
        return dets
    return dets[np.asarray(dets.confidence) >= conf]


def run_variant(name: str, scene: SyntheticScene, frames: int, fps: float, quick: Detector,
                deep_crop: Detector, deep_frame: Detector, trigger: Trigger, window: int,
                max_regions: int, conf: float) -> Dict:
    tracker = Tracker(frame_rate=fps)
    tracks, found = {}, {}
    infer_s, deep_runs, crop_count = 0.0, 0, 0
    changed = {'confirmed': 0, 'added': 0, 'removed': 0}
    buf = None
    for i in range(frames):
        buf = scene.render(i, buf)
        t0 = time.perf_counter()
        if name == 'deeper only':
            dets = deep_frame.detect(buf)
            deep_runs += 1
        else:
            dets = quick.detect(buf)
            if name == 'cascade':
                hit = trigger.select(dets)
                if hit.any():
                    # Most uncertain first: those are what the deeper look is for.
                    order = np.argsort(np.asarray(dets.confidence)[hit])
                    windows = regions(dets.xyxy[hit][order], scene.width, scene.height,
                                      window, max_regions)
                    deep = from_crops(deep_crop.detect_many(crops(buf, windows)), windows,
                                      scene.width, scene.height)
                    dets, counts = refine(dets, deep, windows)
                    deep_runs += 1
                    crop_count += len(windows)
                    for k, v in counts.items():
                        changed[k] += v
        infer_s += time.perf_counter() - t0
        dets = _keep(dets, conf)
        found[i + 1] = dets
        tracks[i + 1] = tracker.update(dets, i / fps)
    return {'variant': name, 'tracks': tracks, 'detections': found,
            'infer_ms_per_frame': 1e3 * infer_s / max(frames, 1),
            'deep_frames': deep_runs, 'crops': crop_count, **changed}


def recall_by_size(scene: SyntheticScene, detections: Dict[int, sv.Detections],
                   small_px: float) -> Dict[str, float]:
    """Share of ground-truth boxes matched (IoU >= 0.5, class-agnostic) among small ones and
    among all, and the precision of all boxes."""
    hits = {'small': [0, 0], 'all': [0, 0]}
    tp = total = 0
    for frame, dets in detections.items():
        truth = scene.ground_truth(frame - 1)
        gt = np.array([[g.x1, g.y1, g.x2, g.y2] for g in truth], dtype=np.float64).reshape(-1, 4)
        total += len(dets)
        iou = box_iou(gt, np.asarray(dets.xyxy, dtype=np.float64).reshape(-1, 4))
        seen = iou.max(axis=1) >= 0.5 if iou.shape[1] else np.zeros(len(gt), dtype=bool)
        tp += int((iou.max(axis=0) >= 0.5).sum()) if iou.shape[0] and iou.shape[1] else 0
        small = np.maximum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]) < small_px
        for key, mask in (('small', small), ('all', np.ones(len(gt), dtype=bool))):
            hits[key][0] += int(seen[mask].sum())
            hits[key][1] += int(mask.sum())
    return {'recall_small': hits['small'][0] / max(hits['small'][1], 1),
            'recall_all': hits['all'][0] / max(hits['all'][1], 1),
            'precision': tp / max(total, 1), 'small_gt': hits['small'][1]}


def main(argv=None) -> int:
    from edge_tracker.tools.eval import default_model, tracking_metrics
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seeds', type=int, nargs='+', default=[40, 41])
    ap.add_argument('--frames', type=int, default=150)
    ap.add_argument('--width', type=int, default=1280)
    ap.add_argument('--height', type=int, default=720)
    ap.add_argument('--sizes', type=float, nargs=2, default=(0.02, 0.10),
                    help='object sizes as fractions of the shorter side')
    ap.add_argument('--fps', type=float, default=30.0)
    ap.add_argument('--model', default=None)
    ap.add_argument('--imgsz', type=int, default=320, help='quick stage input size')
    ap.add_argument('--deep-imgsz', type=int, default=1280, help='deeper only: input size')
    ap.add_argument('--window', type=int, default=320, help='cascade: crop side (pixels)')
    ap.add_argument('--max-regions', type=int, default=4)
    ap.add_argument('--low', type=float, default=0.05, help='cascade: uncertain band from')
    ap.add_argument('--high', type=float, default=0.5, help='cascade: uncertain band to')
    ap.add_argument('--conf', type=float, default=0.25, help='boxes handed to the tracker')
    ap.add_argument('--small', type=float, default=32.0, help='small: longer side below, px')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', help='write the results here')
    args = ap.parse_args(argv)
    model = args.model or default_model()
    quick = Detector(model, imgsz=args.imgsz, conf=args.low, threads=args.threads)
    deep_crop = Detector(model, imgsz=args.window, conf=args.low, threads=args.threads)
    deep_frame = Detector(model, imgsz=args.deep_imgsz, conf=args.low, threads=args.threads)
    trigger = Trigger(low=args.low, high=args.high)
    rows: List[Dict] = []
    for seed in args.seeds:
        scene = scene_for(seed, args.width, args.height, args.sizes)
        with tempfile.TemporaryDirectory() as tmp:
            gt_path = os.path.join(tmp, 'gt.txt')
            write_gt(gt_path, gt_rows(scene, args.frames))
            for name in ('quick only', 'cascade', 'deeper only'):
                run = run_variant(name, scene, args.frames, args.fps, quick, deep_crop,
                                  deep_frame, trigger, args.window, args.max_regions, args.conf)
                row = {'seed': seed, 'variant': name,
                       **tracking_metrics(gt_path, run.pop('tracks')),
                       **recall_by_size(scene, run.pop('detections'), args.small), **run}
                row['variant'] = name
                rows.append(row)
                print(f'seed {seed:3d}  {name:12s}  HOTA {row["HOTA"]:.3f}  IDF1 {row["IDF1"]:.3f}'
                      f'  recall small {row["recall_small"]:.3f}  all {row["recall_all"]:.3f}'
                      f'  precision {row["precision"]:.3f}  {row["infer_ms_per_frame"]:6.1f} ms/frame'
                      f'  deep frames {row["deep_frames"]}  crops {row["crops"]}'
                      f'  (+{row["added"]} ={row["confirmed"]} -{row["removed"]})', flush=True)
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'args': vars(args), 'rows': rows}, f, indent=1)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
