"""Quick only, cascade, and deeper only, side by side on synthetic scenes with small objects.

    python -m edge_tracker.tools.cascade_eval [--seeds 40 41] [--frames 150]
        [--candidates 0.05:0.5 0.1:0.5:0:0.1 ...] [--lag 0]

The quick stage is the model at --imgsz on the whole frame; the deeper stage is the same model
on --window-pixel crops around the quick stage's triggering boxes (native resolution: small
objects get the pixels a downscaled pass takes from them); deeper only is the model at
--deep-imgsz on the whole frame. Each cascade candidate is a trigger, low:high[:max_side
[:recheck_s]] (the detector's deep_score_band, deep_max_box_px and deep_recheck_s), and its
refinements reach the tracker as in the nodes (core/cascade.PendingRefinement): in time for
their own frame with --lag 0, else --lag frames later, merged into the following frames' quick
boxes for --carry-s (at least recheck_s); with a lag, no new look starts before the last one
arrived (the node's deeper stage takes one frame at a time). Each variant's boxes (score >=
--conf) are tracked by the project's tracker and scored against the scene's exact ground truth:
HOTA, IDF1, detection recall on small objects (longer side < --small pixels) and on all,
precision, the share of frames the deeper stage looked at, and the inference time per frame
measured in the same run. Then each candidate's share of the deeper stage's gain over quick
only and of its extra time, and the candidate chosen by the rule in `choose`.
"""

import argparse
import json
import os
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np
import supervision as sv

from edge_tracker.core.bytetrack import box_iou
from edge_tracker.core.cascade import DeepLook, PendingRefinement, Trigger, keep
from edge_tracker.core.detector import Detector
from edge_tracker.core.mot import gt_rows, write_gt
from edge_tracker.core.synthetic import SyntheticScene
from edge_tracker.core.tracking import Tracker


def scene_for(seed: int, width: int, height: int, size_range) -> SyntheticScene:
    """Near and far objects: sizes spread over `size_range` of the shorter side."""
    return SyntheticScene(width, height, seed=seed, size_range=tuple(size_range), num_objects=6,
                          spawn_interval=30.0)


def parse_candidate(text: str) -> Tuple[Trigger, float]:
    """'low:high[:max_side[:recheck_s]]' -> the trigger and recheck interval it describes."""
    parts = [float(v) for v in text.split(':')]
    if not 2 <= len(parts) <= 4:
        raise argparse.ArgumentTypeError(f'{text!r}: give low:high[:max_side[:recheck_s]]')
    parts += [0.0] * (4 - len(parts))
    return Trigger(low=parts[0], high=parts[1], max_side=parts[2]), parts[3]


def label(candidate: Tuple[Trigger, float]) -> str:
    trigger, recheck_s = candidate
    side = f', < {trigger.max_side:g} px' if trigger.max_side else ''
    again = f', recheck {recheck_s:g} s' if recheck_s else ''
    return f'[{trigger.low:g}, {trigger.high:g}){side}{again}'


def quick_pass(scene: SyntheticScene, frames: int, quick: Detector):
    """The quick stage's boxes and inference seconds on every frame (shared by quick only and
    every cascade candidate: the same model on the same frames gives the same boxes)."""
    out, buf = [], None
    for i in range(frames):
        buf = scene.render(i, buf)
        t0 = time.perf_counter()
        dets = quick.detect(buf)
        out.append((dets, time.perf_counter() - t0))
    return out


def run_variant(name: str, scene: SyntheticScene, frames: int, fps: float, quick_runs,
                deep_crop: Detector, deep_frame: Detector, candidate, window: int,
                max_regions: int, conf: float, carry_s: float, lag: int = 0) -> Dict:
    tracker = Tracker(frame_rate=fps)
    tracks, found = {}, {}
    infer_s, deep_runs, crop_count = 0.0, 0, 0
    changed = {'confirmed': 0, 'added': 0, 'removed': 0}
    trigger, recheck_s = candidate
    look = DeepLook(deep_crop.detect_many, trigger, window, max_regions, recheck_s)
    # A look's verdicts must last until the next look at the same object: the tracker's
    # refined_max_age_s at least deep_recheck_s.
    pending = PendingRefinement(max(carry_s, recheck_s))
    ready, busy_until = [], 0   # refinements in flight: (frame they arrive on, stamp, boxes)
    buf = None
    for i in range(frames):
        buf = scene.render(i, buf)
        if name == 'deeper only':
            t0 = time.perf_counter()
            dets = deep_frame.detect(buf)
            infer_s += time.perf_counter() - t0
            deep_runs += 1
        else:
            dets, quick_s = quick_runs[i]
            infer_s += quick_s
            if name == 'cascade':
                result = None
                if i >= busy_until:   # the node's deeper stage takes one frame at a time
                    t0 = time.perf_counter()
                    result = look.look(buf, dets, i / fps)
                    infer_s += time.perf_counter() - t0
                if result is not None:
                    refined, counts, windows = result
                    ready.append((i + lag, i / fps, keep(refined, conf)))
                    busy_until = i + max(lag, 1)
                while ready and ready[0][0] <= i:
                    _, stamp, boxes = ready.pop(0)
                    pending.offer(stamp, boxes, (i - 1) / fps if stamp < i / fps else None)
                # The tracker's rule (tracker_node): its own frame, then carried over.
                dets, _ = pending.apply(i / fps, keep(dets, conf))
                if result is not None:
                    deep_runs += 1
                    crop_count += len(windows)
                    for k, v in counts.items():
                        changed[k] += v
        dets = keep(dets, conf)
        found[i + 1] = dets
        tracks[i + 1] = tracker.update(dets, i / fps)
    return {'variant': name, 'tracks': tracks, 'detections': found,
            'infer_ms_per_frame': 1e3 * infer_s / max(frames, 1),
            'deep_frames': deep_runs, 'deep_share': deep_runs / max(frames, 1),
            'crops': crop_count, **changed}


def gain_shares(rows: List[Dict]) -> None:
    """Adds to each cascade row the share of the deeper stage's gain over quick only it keeps
    (HOTA, IDF1, small-object recall) and the share of its extra inference time it costs."""
    base = {(r['seed'], r['variant']): r for r in rows if r['variant'] != 'cascade'}
    for r in rows:
        if r['variant'] != 'cascade':
            continue
        q, d = base[(r['seed'], 'quick only')], base[(r['seed'], 'deeper only')]
        for key in ('HOTA', 'IDF1', 'recall_small'):
            span = d[key] - q[key]
            r[f'{key}_gain_share'] = (r[key] - q[key]) / span if abs(span) > 1e-9 else 1.0
        extra = d['infer_ms_per_frame'] - q['infer_ms_per_frame']
        r['cost_share'] = (r['infer_ms_per_frame'] - q['infer_ms_per_frame']) / extra \
            if extra > 0 else 0.0


def choose(rows: List[Dict], keep_share: float) -> str:
    """The rule thresholds are chosen by: the candidate that fires on the fewest frames (mean
    over the seeds) while keeping at least `keep_share` of the deeper stage's HOTA gain over
    quick only (mean over the seeds); when none does, the one keeping the most."""
    by = {}
    for r in rows:
        if r['variant'] == 'cascade':
            by.setdefault(r['candidate'], []).append(r)
    mean = {c: (float(np.mean([r['HOTA_gain_share'] for r in rs])),
                float(np.mean([r['deep_share'] for r in rs]))) for c, rs in by.items()}
    fit = [c for c, (gain, _) in mean.items() if gain >= keep_share]
    if not fit:
        return max(mean, key=lambda c: mean[c][0])
    return min(fit, key=lambda c: (mean[c][1], -mean[c][0]))


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
    ap.add_argument('--candidates', nargs='+', type=parse_candidate,
                    default=[parse_candidate('0.05:0.5')],
                    help='cascade triggers to compare: low:high (uncertain score band) or '
                         'low:high:max_side (only boxes smaller than max_side pixels)')
    ap.add_argument('--carry-s', type=float, default=0.05,
                    help="cascade: a refinement is merged into the following frames' quick "
                         "boxes this long (the tracker's refined_max_age_s)")
    ap.add_argument('--lag', type=int, default=0,
                    help='cascade: frames a refinement takes to reach the tracker, as in the '
                         'node (0: in time for its own frame); the deeper stage starts no new '
                         'look until the last one arrived')
    ap.add_argument('--keep-share', type=float, default=0.5,
                    help="choosing: keep at least this share of the deeper stage's HOTA gain")
    ap.add_argument('--conf', type=float, default=0.25, help='boxes handed to the tracker')
    ap.add_argument('--small', type=float, default=32.0, help='small: longer side below, px')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--json', help='write the results here')
    args = ap.parse_args(argv)
    model = args.model or default_model()
    floor = min([t.low for t, _ in args.candidates] + [args.conf])
    quick = Detector(model, imgsz=args.imgsz, conf=floor, threads=args.threads)
    deep_crop = Detector(model, imgsz=args.window, conf=floor, threads=args.threads)
    deep_frame = Detector(model, imgsz=args.deep_imgsz, conf=floor, threads=args.threads)
    rows: List[Dict] = []
    # Untimed calls on a scene's frame first: the first inferences at a new input shape set up
    # the backend (seed 40, timed first, had shown 215 ms/frame for quick only, 23 on seed 41).
    first = scene_for(args.seeds[0], args.width, args.height, args.sizes).render(0)
    for _ in range(5):
        quick.detect(first)
        deep_frame.detect(first)
        deep_crop.detect_many([first[:args.window, :args.window]] * 2)
    started = time.perf_counter()
    for seed in args.seeds:
        scene = scene_for(seed, args.width, args.height, args.sizes)
        quick_runs = quick_pass(scene, args.frames, quick)
        with tempfile.TemporaryDirectory() as tmp:
            gt_path = os.path.join(tmp, 'gt.txt')
            write_gt(gt_path, gt_rows(scene, args.frames))
            plan = [('quick only', None), ('deeper only', None)] + \
                [('cascade', t) for t in args.candidates]
            for name, trigger in plan:
                run = run_variant(name, scene, args.frames, args.fps, quick_runs, deep_crop,
                                  deep_frame, trigger or (Trigger(), 0.0), args.window,
                                  args.max_regions, args.conf, args.carry_s, args.lag)
                row = {'seed': seed, 'variant': name,
                       'candidate': label(trigger) if trigger else '',
                       **tracking_metrics(gt_path, run.pop('tracks')),
                       **recall_by_size(scene, run.pop('detections'), args.small), **run}
                row['variant'] = name
                rows.append(row)
                print(f'seed {seed:3d}  {name:12s} {row["candidate"]:22s} HOTA {row["HOTA"]:.3f}'
                      f'  IDF1 {row["IDF1"]:.3f}  recall small {row["recall_small"]:.3f}'
                      f'  all {row["recall_all"]:.3f}  precision {row["precision"]:.3f}'
                      f'  {row["infer_ms_per_frame"]:6.1f} ms/frame'
                      f'  deep frames {row["deep_frames"]}  crops {row["crops"]}'
                      f'  (+{row["added"]} ={row["confirmed"]} -{row["removed"]})', flush=True)
    gain_shares(rows)
    for r in rows:
        if r['variant'] == 'cascade':
            print(f'seed {r["seed"]:3d}  cascade {r["candidate"]:22s} fires on '
                  f'{100 * r["deep_share"]:5.1f} % of frames; keeps {100 * r["HOTA_gain_share"]:5.1f} %'
                  f' of the HOTA gain, {100 * r["IDF1_gain_share"]:5.1f} % of IDF1\'s, '
                  f'{100 * r["recall_small_gain_share"]:5.1f} % of small recall\'s, for '
                  f'{100 * r["cost_share"]:5.1f} % of the extra time')
    chosen = choose(rows, args.keep_share) if len(args.candidates) > 1 else \
        label(args.candidates[0])
    print(f'chosen (fewest deeper looks keeping >= {100 * args.keep_share:g} % of the deeper '
          f"stage's HOTA gain): {chosen}; {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'args': {k: (v if k != 'candidates' else [label(t) for t in v])
                                for k, v in vars(args).items()},
                       'chosen': chosen, 'rows': rows}, f, indent=1)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
