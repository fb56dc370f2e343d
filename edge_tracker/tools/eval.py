"""`edge_eval`: tracking accuracy of edge_tracker on data, with numbers users can compare.

    edge_eval synthetic [--seed 0] [--frames 300] [--mode core|ros|both] [--compare]
    edge_eval video PATH [--frames N] [--compare]
    edge_eval mot FOLDER [--frame-skips 1,2,3] [--trackers NAMES]   (or --gt gt.txt [--det det.txt])

synthetic: the scene generator's sequence with exact ground truth; the detector (the project's
own model by default) and tracker run either through core/ directly or as the real ROS nodes
(separate processes), and both must agree. Prints HOTA, MOTA, IDF1, ID switches and detection
precision/recall (TrackEval-compatible metrics from roboflow `trackers.eval`).
video: a recording without ground truth: inference count, detections and tracks per frame.
mot: tracking alone on public detections (MOTChallenge det.txt) against gt.txt for a folder of
sequences: the project's tracker beside every tracker of roboflow `trackers`.
--compare: frame_skip 1/2/3 with and without prediction, and the motion gate off/on, side by
side with how many frames were inferred.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import supervision as sv

from edge_tracker.core.bytetrack import box_iou
from edge_tracker.core.detector import Detector
from edge_tracker.core import mot
from edge_tracker.core.mot import read_mot
from edge_tracker.core.motion import MotionGate
from edge_tracker.core.synthetic import SyntheticScene
from edge_tracker.core.tracking import TRACKER_DEFAULTS, Tracker
from edge_tracker.paths import share_directory
from edge_tracker.tools.procs import Child, isolate, node_command, stop_all

DEFAULT_MODEL = 'edge_tracker_shapes.pt'


@dataclass(frozen=True)
class Variant:
    frame_skip: int = 1
    predict: bool = True
    motion_gate: bool = False

    @property
    def label(self) -> str:
        return (f'skip {self.frame_skip} ' + ('predict' if self.predict else 'no-predict')
                + (' +motion' if self.motion_gate else ''))


COMPARED = [Variant(1), Variant(2), Variant(2, predict=False), Variant(3),
            Variant(3, predict=False), Variant(1, motion_gate=True)]


@dataclass
class Run:
    """One pass over a sequence: MOT rows per frame (1-based) and what it cost."""
    tracks: Dict[int, sv.Detections]
    detections: Dict[int, sv.Detections]
    inferred: int
    frames: int
    seconds: float


def run_core(frames: Iterable[np.ndarray], detector: Optional[Detector],
             variant: Variant, fps: float, tracker: Tracker,
             public: Optional[Dict[int, sv.Detections]] = None) -> Run:
    """The nodes' logic in one loop: which frames are inferred (frame skip, motion gate), then
    measured tracks on inferred frames and predicted (or no) tracks on the others."""
    gate = MotionGate() if variant.motion_gate else None
    tracks, dets, inferred = {}, {}, 0
    start = time.perf_counter()
    index = -1
    for index, frame in enumerate(frames):
        stamp = index / fps
        infer = index % variant.frame_skip == 0
        if infer and gate is not None:
            infer = gate.check(frame, stamp)
        if infer:
            found = public.get(index + 1, sv.Detections.empty()) if public is not None \
                else detector.detect(frame)
            inferred += 1
            dets[index + 1] = found
            tracks[index + 1] = tracker.update(found, stamp)
        elif variant.predict:
            tracks[index + 1] = tracker.predict(stamp)
    return Run(tracks, dets, inferred, index + 1, time.perf_counter() - start)


def tracking_metrics(gt_path: str, tracks: Dict[int, sv.Detections],
                     rules: str = 'all') -> Dict[str, float]:
    """HOTA, MOTA, IDF1, IDSW of `tracks` against a MOT gt file. rules='all' scores every
    consider=1 row whatever its class (the synthetic scene's classes are shapes); 'MOT17' and
    'MOT15' score as MOTChallenge does (core/mot.py's `score`)."""
    gt = read_mot(gt_path, 'gt')
    frames = max([gt.last_frame] + list(tracks))
    return mot.summary(mot.score(gt, _id_boxes(tracks), frames, rules))


def _id_boxes(tracks: Dict[int, sv.Detections]) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    return {f: (np.asarray(t.tracker_id, np.int64).reshape(-1),
                np.asarray(t.xyxy, np.float64).reshape(-1, 4)) for f, t in tracks.items()}


def detection_metrics(gt_path: str, detections: Dict[int, sv.Detections],
                      threshold: float = 0.5) -> Dict[str, float]:
    """Precision and recall of the detector on the frames it ran on (IoU >= threshold,
    one-to-one, best overlaps first; class-agnostic)."""
    from scipy.optimize import linear_sum_assignment
    gt = read_mot(gt_path, 'gt', min_confidence=1)
    tp = fp = fn = 0
    for frame, dets in detections.items():
        truth = gt.get(frame).boxes
        iou = box_iou(np.asarray(dets.xyxy, dtype=np.float64).reshape(-1, 4), truth)
        matched = 0
        if iou.size:
            rows, cols = linear_sum_assignment(-iou)
            matched = int((iou[rows, cols] >= threshold).sum())
        tp += matched
        fp += len(dets) - matched
        fn += len(truth) - matched
    return {'precision': tp / max(tp + fp, 1), 'recall': tp / max(tp + fn, 1)}


def synthetic_frames(scene: SyntheticScene, count: int) -> Iterable[np.ndarray]:
    buf = None
    for i in range(count):
        buf = scene.render(i, buf)
        yield buf


def default_model() -> str:
    return os.path.join(share_directory(), 'models', DEFAULT_MODEL)


# The tracker's defaults (core/tracking.py, also the node's and the profiles'): the options that
# roboflow's ByteTrackTracker shares, for side-by-side runs; the lost-track buffer is the
# node's (frames at the sequence's rate).
TRACKER_OPTIONS = {k: TRACKER_DEFAULTS[k] for k in (
    'track_activation_threshold', 'high_conf_det_threshold', 'minimum_iou_threshold',
    'minimum_consecutive_frames')}


def tracker_defaults() -> Dict:
    return {k: v for k, v in TRACKER_DEFAULTS.items() if k != 'frame_rate'}


def make_tracker(fps: float) -> Tracker:
    return Tracker(**dict(TRACKER_DEFAULTS, frame_rate=fps))


# --- through the ROS nodes -----------------------------------------------------------------

# One inference thread: accuracy does not depend on it, and a pool of two on a 2-core machine
# that is busy with anything else stalls at every parallel region (seconds per frame).
EVAL_THREADS = 1


def ros_node_params(seed: int, fps: float, model: str, imgsz: int, conf: float, iou: float,
                    width: int, height: int, variant: Variant,
                    lost_frames: int) -> Dict[str, Dict[str, object]]:
    """The nodes' parameters for a lossless, paced replay of the synthetic sequence: the camera
    sends frame n + 1 only once the tracks of frame n are out and stamps frames 1/fps apart;
    every frame waits for its detector's answer and nothing is best effort. The nodes then see
    what run_core() sees, frame by frame, on a machine of any speed or load."""
    return {
        'camera_node': {'source': f'synthetic:{seed}', 'fps': fps, 'width': width,
                        'height': height, 'reliability': 'reliable', 'depth': 100,
                        'wait_for_subscribers': 2, 'paced': True, 'pace_timeout_s': 60.0},
        'detector_node': {'model': model, 'imgsz': imgsz, 'conf': conf, 'iou': iou,
                          'threads': EVAL_THREADS, 'reliability': 'reliable',
                          'frame_skip': variant.frame_skip, 'motion_gate': variant.motion_gate,
                          'motion_refresh_s': 2.0},
        'tracker_node': {'frame_rate': fps, 'lost_track_buffer': lost_frames,
                         'predict_skipped': variant.predict, 'reliability': 'reliable',
                         'max_wait_s': 10.0, 'adaptive_wait': False, **TRACKER_OPTIONS,
                         # camera_info as well: the camera starts once its two listeners
                         # (this tool and the tracker) are on it; the frames are the same.
                         'frame_clock': 'camera_info'},
    }


def run_ros(seed: int, frames: int, fps: float, model: str, imgsz: int, conf: float,
            iou: float, width: int, height: int, variant: Variant, log_dir: str,
            lost_frames: int = TRACKER_DEFAULTS['lost_track_buffer'],
            stall_s: float = 120.0) -> Run:
    """The real nodes as separate processes on the synthetic camera, paced (ros_node_params);
    tracks per camera frame. Fails if no frame or tracks moved for `stall_s` (a stuck node),
    never for being slow."""
    import rclpy
    import rclpy.context
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, Image
    from vision_msgs.msg import Detection2DArray

    from edge_tracker.conversions import msg_to_detections, stamp_to_seconds
    from edge_tracker.qos import image_qos, results_qos

    # Keeps a domain the caller chose; the image transport settings always.
    isolate(int(os.environ['ROS_DOMAIN_ID']) if 'ROS_DOMAIN_ID' in os.environ else None)
    nodes = ros_node_params(seed, fps, model, imgsz, conf, iou, width, height, variant,
                            lost_frames)
    procs = []
    context = rclpy.context.Context()  # its own, so eval also runs inside a ROS process
    rclpy.init(context=context)
    node = rclpy.create_node('eval', context=context)
    infos: List[float] = []
    tracks: Dict[float, sv.Detections] = {}
    node.create_subscription(CameraInfo, 'camera_info',
                             lambda m: infos.append(stamp_to_seconds(m.header.stamp)),
                             image_qos('reliable', 100))
    node.create_subscription(Image, 'image_raw', lambda m: None, image_qos('reliable', 100))
    names: Dict[str, int] = {}

    def on_tracks(msg):
        d = msg_to_detections(msg, names)
        d.tracker_id = np.array([int(x.id) for x in msg.detections
                                 if _finite_box(x)], dtype=int)
        tracks[stamp_to_seconds(msg.header.stamp)] = d

    node.create_subscription(Detection2DArray, 'tracks', on_tracks, results_qos())
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    start = time.perf_counter()
    stalled = ''
    try:
        for name in ('detector_node', 'tracker_node', 'camera_node'):
            procs.append(Child(name, node_command(name, nodes[name]),
                               os.path.join(log_dir, f'{name}.log')))
        progress, last_move = (0, 0), time.monotonic()
        while not (len(infos) >= frames and infos[frames - 1] in tracks):
            executor.spin_once(timeout_sec=0.05)
            if (len(infos), len(tracks)) != progress:
                progress, last_move = (len(infos), len(tracks)), time.monotonic()
            dead = [c.label for c in procs if not c.alive()]
            if dead or time.monotonic() - last_move > stall_s:
                stalled = f'{", ".join(dead)} exited' if dead else \
                    f'nothing moved for {stall_s:.0f} s'
                break
    finally:
        stop_all(procs, timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    if stalled or len(infos) < frames:
        raise RuntimeError(f'{stalled}: {len(infos)} of {frames} camera frames arrived, '
                           f'{len(tracks)} tracks; logs in {log_dir}')
    by_frame = {i + 1: tracks[s] for i, s in enumerate(infos[:frames]) if s in tracks}
    return Run(by_frame, {}, -1, frames, time.perf_counter() - start)


def _finite_box(d) -> bool:
    values = (d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y)
    return all(np.isfinite(v) for v in values) and d.bbox.size_x >= 0 and d.bbox.size_y >= 0


# --- commands --------------------------------------------------------------------------------

def _print_table(rows: List[Dict]) -> None:
    cols = ['variant', 'inferred', 'HOTA', 'MOTA', 'IDF1', 'IDSW', 'precision', 'recall']
    print('  '.join(f'{c:>18}' if i == 0 else f'{c:>9}' for i, c in enumerate(cols)))
    for r in rows:
        cells = []
        for i, c in enumerate(cols):
            v = r.get(c, '')
            text = f'{v:.3f}' if isinstance(v, float) else str(v)
            cells.append(f'{text:>18}' if i == 0 else f'{text:>9}')
        print('  '.join(cells))


def cmd_synthetic(args) -> Dict:
    scene = SyntheticScene(args.width, args.height, seed=args.seed)
    from edge_tracker.core.mot import gt_rows, write_gt
    work = tempfile.mkdtemp(prefix='edge_tracker_eval_')
    gt_path = os.path.join(work, 'gt.txt')
    write_gt(gt_path, gt_rows(scene, args.frames))
    detector = Detector(args.model, imgsz=args.imgsz, conf=args.conf, iou=args.iou,
                        threads=EVAL_THREADS)
    results = {'sequence': f'synthetic seed {args.seed}, {args.frames} frames, '
                           f'{args.width}x{args.height} @ {args.fps:g} fps',
               'model': args.model, 'imgsz': args.imgsz, 'conf': args.conf, 'iou': args.iou,
               'tracker': tracker_defaults(), 'variants': []}
    variants = COMPARED if args.compare else [Variant()]
    for variant in variants:
        if args.mode in ('core', 'both'):
            run = run_core(synthetic_frames(scene, args.frames), detector, variant, args.fps,
                           make_tracker(args.fps))
            row = {'variant': variant.label, 'mode': 'core', 'inferred': run.inferred,
                   **tracking_metrics(gt_path, run.tracks),
                   **detection_metrics(gt_path, run.detections),
                   'ms_per_frame': 1e3 * run.seconds / max(run.frames, 1)}
            results['variants'].append(row)
        if args.mode in ('ros', 'both') and variant == Variant():
            # Paced: the same frames, time steps and tracker settings as the core run.
            run = run_ros(args.seed, args.frames, args.fps, args.model, args.imgsz,
                          args.conf, args.iou, args.width, args.height, variant, work,
                          lost_frames=TRACKER_DEFAULTS['lost_track_buffer'])
            results['variants'].append({'variant': variant.label, 'mode': 'ros',
                                        'inferred': '', 'answered': len(run.tracks),
                                        **tracking_metrics(gt_path, run.tracks)})
    _print_table([dict(r, variant=f'{r["variant"]} ({r["mode"]})') for r in results['variants']])
    return results


def cmd_video(args) -> Dict:
    import cv2
    if not os.path.isfile(args.path):
        raise SystemExit(f'eval: video not found: {args.path}')
    cap = cv2.VideoCapture(args.path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while len(frames) < args.frames:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    detector = Detector(args.model, imgsz=args.imgsz, conf=args.conf, iou=args.iou, threads=2)
    results = {'video': os.path.basename(args.path), 'frames': len(frames), 'variants': []}
    for variant in (COMPARED if args.compare else [Variant()]):
        run = run_core(frames, detector, variant, fps, make_tracker(fps))
        ids = {int(t) for d in run.tracks.values() for t in d.tracker_id}
        row = {'variant': variant.label, 'inferred': run.inferred,
               'skipped': run.frames - run.inferred,
               'detections_per_inferred_frame':
                   sum(len(d) for d in run.detections.values()) / max(run.inferred, 1),
               'track_ids': len(ids), 'ms_per_frame': 1e3 * run.seconds / max(run.frames, 1)}
        results['variants'].append(row)
        print(f'{variant.label:>22}: inferred {row["inferred"]:5d} of {run.frames}, skipped '
              f'{row["skipped"]:5d}, {row["detections_per_inferred_frame"]:.2f} detections per '
              f'inferred frame, {len(ids)} track ids, {row["ms_per_frame"]:.1f} ms/frame')
    return results


# --- MOTChallenge sequences: the project's tracker beside roboflow `trackers` -------------------

# The shared sequences the tracker's defaults were chosen on; the others are only reported.
CHOSEN_ON = ('MOT17-02-FRCNN', 'MOT17-04-FRCNN', 'MOT17-09-FRCNN')
PROJECT = 'edge_tracker'


def library_trackers(fps: float) -> Dict[str, object]:
    """Every tracker of roboflow `trackers` with its defaults (at the sequence's frame rate).
    Camera-motion compensation needs images, which public detections come without: off."""
    import trackers as rf
    return {'SORT': rf.SORTTracker(frame_rate=fps),
            'ByteTrack': rf.ByteTrackTracker(frame_rate=fps),
            'OC-SORT': rf.OCSORTTracker(frame_rate=fps),
            'BoT-SORT (no CMC)': rf.BoTSORTTracker(frame_rate=fps, enable_cmc=False),
            'C-BIoU': rf.CBIoUTracker(frame_rate=fps),
            'McByte (no CMC)': rf.McByteTracker(frame_rate=fps, enable_cmc=False)}


def public_detections(det_path: str) -> Dict[int, sv.Detections]:
    det = read_mot(det_path, 'det')
    return {frame: sv.Detections(xyxy=data.boxes.astype(np.float64),
                                 confidence=np.clip(data.confidences, 0, 1),
                                 class_id=np.zeros(len(data), int))
            for frame, data in det.frames.items()}


def run_library(tracker, public: Dict[int, sv.Detections], frames: int, fps: float,
                frame_skip: int) -> Tuple[Dict[int, sv.Detections], float]:
    """A library tracker on every frame_skip-th frame (timestamps, so its motion model steps by
    the real interval); between inferred frames it has no prediction API, so its last tracks
    are held. Returns tracks per frame and the seconds spent in update."""
    import warnings
    tracks, held, spent = {}, _empty_tracks(), 0.0
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for index in range(frames):
            if index % frame_skip == 0:
                found = public.get(index + 1, sv.Detections.empty())
                t0 = time.perf_counter()
                out = tracker.update(found, timestamp=index / fps)
                spent += time.perf_counter() - t0
                held = out[out.tracker_id >= 0] if len(out) else _empty_tracks()
            tracks[index + 1] = held
    return tracks, spent


def _empty_tracks() -> sv.Detections:
    out = sv.Detections.empty()
    out.tracker_id = np.array([], dtype=int)
    return out


def mot_table(sequences: List[mot.MotSequence], frame_skips: Iterable[int],
              names: Optional[List[str]] = None, fallback_fps: float = 30.0,
              chosen_on: Iterable[str] = CHOSEN_ON) -> Dict:
    """Every tracker on every sequence at every frame skip: per-sequence scores, and overall
    ones (all sequences; and those not used for choosing the defaults)."""
    results: Dict = {'sequences': {}, 'overall': {}, 'held_out': {}, 'chosen_on': list(chosen_on)}
    raw: Dict[Tuple[int, str], Dict[str, dict]] = {}
    for seq in sequences:
        if seq.det is None:
            raise SystemExit(f'eval: no det.txt (or det/det.txt) beside {seq.gt}')
        fps = seq.frame_rate or fallback_fps
        gt = read_mot(seq.gt, 'gt')
        public = public_detections(seq.det)
        count = seq.length or max(gt.last_frame, max(public, default=0))
        rules = gt.benchmark
        per_seq = results['sequences'].setdefault(seq.name, {'fps': fps, 'frames': count,
                                                             'rules': rules, 'rows': []})
        for skip in frame_skips:
            runs = {}
            if names is None or PROJECT in names:
                blank = np.zeros((1, 1, 3), np.uint8)
                run = run_core((blank for _ in range(count)), None, Variant(skip), fps,
                               make_tracker(fps), public=public)
                runs[PROJECT] = (run.tracks, run.seconds, run.inferred)
            for name, tracker in library_trackers(fps).items():
                if names is None or name in names:
                    tracks, spent = run_library(tracker, public, count, fps, skip)
                    runs[name] = (tracks, spent, len(range(0, count, skip)))
            for name, (tracks, spent, inferred) in runs.items():
                scored = mot.score(gt, _id_boxes(tracks), count, rules)
                raw.setdefault((skip, name), {})[seq.name] = scored
                per_seq['rows'].append({'tracker': name, 'frame_skip': skip,
                                        'ms_per_update': 1e3 * spent / max(inferred, 1),
                                        **mot.summary(scored)})
    chosen = set(chosen_on)
    for (skip, name), by_seq in raw.items():
        row = {'tracker': name, 'frame_skip': skip}
        results['overall'].setdefault(skip, []).append(
            dict(row, **mot.summary(mot.combine(list(by_seq.values())))))
        held = [v for k, v in by_seq.items() if k not in chosen]
        if held:
            results['held_out'].setdefault(skip, []).append(
                dict(row, **mot.summary(mot.combine(held))))
    return results


def _print_mot(results: Dict) -> None:
    def block(title, rows):
        print(f'\n{title}')
        print(f'{"tracker":>20}  {"skip":>4}  {"HOTA":>6}  {"IDF1":>6}  {"MOTA":>6}  {"IDSW":>5}'
              + ('  ms/update' if rows and 'ms_per_update' in rows[0] else ''))
        for r in rows:
            line = (f'{r["tracker"]:>20}  {r["frame_skip"]:>4}  {r["HOTA"]:6.3f}  '
                    f'{r["IDF1"]:6.3f}  {r["MOTA"]:6.3f}  {r["IDSW"]:>5}')
            if 'ms_per_update' in r:
                line += f'  {r["ms_per_update"]:9.2f}'
            print(line)
    for name, seq in results['sequences'].items():
        block(f'{name} ({seq["frames"]} frames at {seq["fps"]:g} fps, {seq["rules"]} rules)',
              sorted(seq['rows'], key=lambda r: r['frame_skip']))
    chosen = ', '.join(results['chosen_on'])
    for key, title in (('overall', 'overall, all sequences'),
                       ('held_out', f'overall, sequences not used for choosing the defaults '
                                    f'(those were {chosen})')):
        rows = [r for skip in sorted(results[key]) for r in results[key][skip]]
        if rows:
            block(title, rows)


def simulated(sequences: List[mot.MotSequence], presets: List[str],
              folder: str) -> List[mot.MotSequence]:
    """Forward-moving-camera copies (core/mot.py's FORWARD_PRESETS) of `sequences`, written
    under `folder` and named SEQ-PRESET; the image size comes from seqinfo.ini."""
    out = []
    for seq in sequences:
        info = mot.read_seqinfo(os.path.join(mot.sequence_folder(seq.gt), 'seqinfo.ini'))
        for preset in presets:
            name = f'{seq.name}-{preset}'
            out.append(mot.forward_motion(seq, int(info['imWidth']), int(info['imHeight']),
                                          mot.FORWARD_PRESETS[preset],
                                          os.path.join(folder, name), name))
    return out


def cmd_mot(args) -> Dict:
    """The project's tracker and every tracker of roboflow `trackers` (their defaults) on the
    same public detections, at every frame and with frame skipping (the project predicting the
    skipped frames, the library holding its last boxes): HOTA, IDF1, MOTA and ID switches per
    sequence and overall, scored as MOTChallenge does (MOT16/17: consider=1 pedestrians,
    distractor matches dropped; MOT15: consider=1)."""
    if args.path and (args.gt or args.det):
        raise SystemExit('eval mot: give a folder or --gt (and --det), not both')
    if args.path:
        if not os.path.exists(args.path):
            raise SystemExit(f'eval mot: not found: {args.path}')
        sequences = mot.find_sequences(args.path)
        if not sequences:
            raise SystemExit(f'eval mot: no sequence (gt.txt or gt/gt.txt) in {args.path}')
    elif args.gt:
        for path in (args.gt, args.det):
            if path and not os.path.isfile(path):
                raise SystemExit(f'eval mot: file not found: {path}')
        sequences = [mot.load_sequence(args.gt, args.det)]
    else:
        raise SystemExit('eval mot: give a folder of sequences (or --gt/--det)')
    if args.sequences:
        wanted = [n.strip() for n in args.sequences.split(',') if n.strip()]
        missing = sorted(set(wanted) - {s.name for s in sequences})
        if missing:
            raise SystemExit(f'eval mot: no sequence named {missing}')
        sequences = [s for s in sequences if s.name in wanted]
    for seq in sequences:
        if seq.frame_rate is None:
            print(f'{seq.name}: no frameRate in seqinfo.ini, using --fps {args.fps:g}')
    chosen_on = CHOSEN_ON
    scratch = None
    if args.simulate:
        presets = [n.strip() for n in args.simulate.split(',') if n.strip()]
        unknown = [n for n in presets if n not in mot.FORWARD_PRESETS]
        if unknown:
            raise SystemExit(f'eval mot: unknown --simulate {unknown}; known: '
                             f'{sorted(mot.FORWARD_PRESETS)}')
        if not args.sequences:
            # Copies of the sequences the defaults are chosen on, never of the reported ones.
            sequences = [s for s in sequences if s.name in CHOSEN_ON]
        scratch = tempfile.TemporaryDirectory(prefix='edge_eval_mot_')
        sequences = simulated(sequences, presets, scratch.name)
        chosen_on = [s.name for s in sequences]
    names = None
    if args.trackers:
        names = [n.strip() for n in args.trackers.split(',') if n.strip()]
        known = [PROJECT] + list(library_trackers(30.0))
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f'eval mot: unknown tracker(s) {unknown}; known: {known}')
    skips = [int(v) for v in args.frame_skips.split(',')]
    if any(v < 1 for v in skips):
        raise SystemExit('eval mot: frame skips must be >= 1')
    try:
        results = mot_table(sequences, skips, names, args.fps, chosen_on)
    finally:
        if scratch is not None:
            scratch.cleanup()
    _print_mot(results)
    results['tracker'] = tracker_defaults()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='edge_eval', description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command')
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--model', default='', help=f'detector model (default: {DEFAULT_MODEL})')
    common.add_argument('--imgsz', type=int, default=320)
    common.add_argument('--conf', type=float, default=0.4, help='detector score threshold')
    common.add_argument('--iou', type=float, default=0.6, help='detector NMS IoU')
    common.add_argument('--compare', action='store_true')
    common.add_argument('--json', default='', help='write the results here too')
    syn = sub.add_parser('synthetic', parents=[common])
    syn.add_argument('--seed', type=int, default=0)
    syn.add_argument('--frames', type=int, default=300)
    syn.add_argument('--fps', type=float, default=30.0)
    syn.add_argument('--width', type=int, default=640)
    syn.add_argument('--height', type=int, default=480)
    syn.add_argument('--mode', choices=('core', 'ros', 'both'), default='core')
    vid = sub.add_parser('video', parents=[common])
    vid.add_argument('path')
    vid.add_argument('--frames', type=int, default=100000)
    # mot tracks public detections: no detector options; it always compares trackers.
    mot_p = sub.add_parser('mot', help='trackers on MOTChallenge public detections',
                           description=cmd_mot.__doc__)
    mot_p.add_argument('path', nargs='?', default='',
                       help='a sequence folder, or a folder of them (each with gt.txt or '
                            'gt/gt.txt, det.txt or det/det.txt, seqinfo.ini)')
    mot_p.add_argument('--gt', default='', help='one gt file instead of a folder')
    mot_p.add_argument('--det', default='', help='its det.txt (default: beside the gt)')
    mot_p.add_argument('--fps', type=float, default=30.0,
                       help='frame rate where a sequence has no seqinfo.ini frameRate')
    mot_p.add_argument('--frame-skips', default='1,2,3',
                       help='inference on every Nth frame, comma-separated (default 1,2,3)')
    mot_p.add_argument('--trackers', default='',
                       help=f'comma-separated subset (default all: {PROJECT}, SORT, ByteTrack, '
                            'OC-SORT, BoT-SORT (no CMC), C-BIoU, McByte (no CMC))')
    mot_p.add_argument('--sequences', default='',
                       help='comma-separated sequence (folder) names to run (default all)')
    mot_p.add_argument('--simulate', default='',
                       help='score copies seen from a camera moving forward instead, '
                            'comma-separated presets: car (10 fps), walk (15 fps); of the '
                            'sequences the defaults are chosen on unless --sequences says')
    mot_p.add_argument('--json', default='', help='write the results here too')
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] or ['synthetic'])
    args.command = args.command or 'synthetic'
    if args.command != 'mot':
        args.model = args.model or default_model()
    os.environ.setdefault('YOLO_OFFLINE', '1')
    result = {'synthetic': cmd_synthetic, 'video': cmd_video, 'mot': cmd_mot}[args.command](args)
    result['date'] = time.strftime('%Y-%m-%d')
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2, default=lambda o: asdict(o) if hasattr(o, '__dataclass_fields__') else str(o))
    return 0


if __name__ == '__main__':
    sys.exit(main())
