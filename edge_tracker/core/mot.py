"""MOTChallenge files: writing a synthetic sequence (frames, gt/gt.txt, seqinfo.ini) and reading
gt.txt / det.txt / tracker result files back as per-frame arrays. ROS-free.

Layout of a written sequence, as MOTChallenge and TrackEval expect it:

    DIR/seqinfo.ini          [Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
    DIR/gt/gt.txt            frame, id, bb_left, bb_top, bb_width, bb_height, conf, class, visibility
    DIR/img1/000001.jpg ...  the frames (or DIR/<name>.avi with video=True; seqinfo then also has
                             `video=<name>.avi`, a key of ours that MOT tools ignore)

Conventions: frames are 1-based (frame index i of the scene is MOT frame i + 1); track ids are
the scene's (1-based); boxes are in pixels, left/top edge plus size; conf is 1 (every gt row is
to be evaluated); class is the scene's class_id + 1, because MOTChallenge classes start at 1
(so 1 = circle, 2 = square, 3 = triangle, see synthetic.CLASS_NAMES); visibility is the
scene's visibility ratio. Only the rows `SyntheticScene.ground_truth()` reports are written,
i.e. objects below the scene's `min_visibility` are left out, not flagged.
"""

import configparser
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge_tracker.core.synthetic import GroundTruthBox, SyntheticScene

GT_COLUMNS = ('frame', 'id', 'bb_left', 'bb_top', 'bb_width', 'bb_height', 'conf', 'class',
              'visibility')


@dataclass
class MotFrame:
    """The rows of one frame. boxes are x1, y1, x2, y2 (pixels); for det.txt and tracker
    results `classes` is -1 and `visibilities` is 1, as those files have no such columns."""
    ids: np.ndarray            # (N,) int64; -1 in det.txt
    boxes: np.ndarray          # (N, 4) float64, xyxy
    confidences: np.ndarray    # (N,) float64
    classes: np.ndarray        # (N,) int64, as written in the file (1-based for our gt)
    visibilities: np.ndarray   # (N,) float64

    @staticmethod
    def empty() -> 'MotFrame':
        return MotFrame(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64),
                        np.zeros(0))

    def __len__(self) -> int:
        return len(self.ids)


class MotData:
    """A MOT file's rows grouped by frame; `get(frame)` is empty for frames without rows."""

    def __init__(self, frames: Dict[int, MotFrame], benchmark: str = 'MOT17') -> None:
        self.frames = frames
        self.benchmark = benchmark   # 'MOT15' for a 10-column gt file (no class column)

    def get(self, frame: int) -> MotFrame:
        found = self.frames.get(frame)
        return found if found is not None else MotFrame.empty()

    @property
    def last_frame(self) -> int:
        return max(self.frames, default=0)

    def __len__(self) -> int:
        return sum(len(f) for f in self.frames.values())


def _read_table(path: str) -> Tuple[np.ndarray, int]:
    """A MOT text file's first 10 columns as a float table (missing columns NaN), and the
    widest row's column count."""
    rows: List[List[float]] = []
    with open(path, encoding='utf-8') as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            parts = line.replace(' ', '').split(',') if ',' in line else line.split()
            if len(parts) < 6:
                raise ValueError(f'{path}:{line_no}: need at least 6 columns, got {len(parts)}')
            try:
                rows.append([float(p) for p in parts[:10]])
            except ValueError:
                raise ValueError(f'{path}:{line_no}: not a number in {line!r}') from None
    table = np.full((len(rows), 10), np.nan)
    for i, r in enumerate(rows):
        table[i, :len(r)] = r
    return table, max((len(r) for r in rows), default=0)


def read_mot(path: str, kind: str = 'gt', min_confidence: Optional[float] = None) -> MotData:
    """Reads a MOT text file. kind='gt': columns 8 and 9 are class and visibility (MOT16/17
    gt.txt, 9 columns); a gt file with 10 columns is MOT15's, whose columns 8-10 are world
    coordinates: its classes read as -1 and visibilities as 1 (`MotData.benchmark` says which).
    kind='det': columns 8+ are the unused world coordinates of det.txt and tracker results.
    Rows with conf below `min_confidence` are dropped (for gt, conf 0 means 'ignore')."""
    if kind not in ('gt', 'det'):
        raise ValueError(f"kind must be 'gt' or 'det', got {kind!r}")
    frames: Dict[int, MotFrame] = {}
    table, width = _read_table(path)
    if not len(table):
        return MotData(frames)
    conf = np.where(np.isnan(table[:, 6]), 1.0, table[:, 6])
    benchmark = 'MOT15' if kind == 'gt' and width >= 10 else 'MOT17'
    if kind == 'gt' and benchmark == 'MOT17':
        classes = np.where(np.isnan(table[:, 7]), -1, table[:, 7]).astype(np.int64)
        vis = np.where(np.isnan(table[:, 8]), 1.0, table[:, 8])
    else:
        classes = np.full(len(table), -1, np.int64)
        vis = np.ones(len(table))
    keep = np.ones(len(table), bool) if min_confidence is None else conf >= min_confidence
    frame_col = table[:, 0].astype(np.int64)
    xyxy = np.stack([table[:, 2], table[:, 3], table[:, 2] + table[:, 4],
                     table[:, 3] + table[:, 5]], axis=1)
    ids = table[:, 1].astype(np.int64)
    for frame in np.unique(frame_col[keep]):
        sel = keep & (frame_col == frame)
        frames[int(frame)] = MotFrame(ids[sel], xyxy[sel], conf[sel], classes[sel], vis[sel])
    return MotData(frames, benchmark)


def gt_rows(scene: SyntheticScene, num_frames: int,
            min_visibility: Optional[float] = None) -> List[Tuple]:
    """gt.txt rows for scene frames 0..num_frames-1 (see the module docstring)."""
    rows = []
    for index in range(num_frames):
        for b in scene.ground_truth(index, min_visibility):
            rows.append(_gt_row(index + 1, b))
    return rows


def _gt_row(frame: int, b: GroundTruthBox) -> Tuple:
    return (frame, b.track_id, b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1, 1, b.class_id + 1,
            b.visibility)


def write_gt(path: str, rows: Iterable[Sequence]) -> None:
    """Writes gt.txt rows (frame, id, left, top, width, height, conf, class, visibility)."""
    _ensure_parent(path)
    with open(path, 'w', encoding='utf-8') as f:
        for fr, tid, left, top, w, h, conf, cls, vis in rows:
            f.write(f'{int(fr)},{int(tid)},{left:.3f},{top:.3f},{w:.3f},{h:.3f},{int(conf)},'
                    f'{int(cls)},{vis:.4f}\n')


def write_results(path: str, rows: Iterable[Sequence]) -> None:
    """Writes tracker results or detections in MOT format: (frame, id, left, top, width,
    height, conf) per row, with -1,-1,-1 for the world coordinates (id -1 for detections)."""
    _ensure_parent(path)
    with open(path, 'w', encoding='utf-8') as f:
        for fr, tid, left, top, w, h, conf in rows:
            f.write(f'{int(fr)},{int(tid)},{left:.3f},{top:.3f},{w:.3f},{h:.3f},{conf:.4f},'
                    '-1,-1,-1\n')


def write_seqinfo(path: str, name: str, frame_rate: float, seq_length: int, width: int,
                  height: int, im_dir: str = 'img1', im_ext: str = '.jpg',
                  extra: Optional[Dict[str, str]] = None) -> None:
    cfg = configparser.ConfigParser()
    cfg.optionxform = str      # MOT keys are camelCase; configparser would lower-case them
    rate = int(frame_rate) if float(frame_rate).is_integer() else frame_rate
    cfg['Sequence'] = {'name': name, 'imDir': im_dir, 'frameRate': str(rate),
                       'seqLength': str(int(seq_length)), 'imWidth': str(int(width)),
                       'imHeight': str(int(height)), 'imExt': im_ext, **(extra or {})}
    _ensure_parent(path)
    with open(path, 'w', encoding='utf-8') as f:
        cfg.write(f, space_around_delimiters=False)


def read_seqinfo(path: str) -> Dict[str, object]:
    """seqinfo.ini as a dict, numbers converted (frameRate float, sizes and length int)."""
    cfg = configparser.ConfigParser()
    cfg.optionxform = str
    if not cfg.read(path, encoding='utf-8') or 'Sequence' not in cfg:
        raise ValueError(f'{path}: no [Sequence] section')
    info: Dict[str, object] = dict(cfg['Sequence'])
    for key in ('seqLength', 'imWidth', 'imHeight'):
        if key in info:
            info[key] = int(str(info[key]))
    if 'frameRate' in info:
        info['frameRate'] = float(str(info['frameRate']))
    return info


def write_sequence(scene: SyntheticScene, out_dir: str, num_frames: int,
                   name: Optional[str] = None, frame_rate: float = 30.0, video: bool = False,
                   im_ext: str = '.jpg', min_visibility: Optional[float] = None) -> Dict[str, str]:
    """Renders scene frames 0..num_frames-1 as a MOTChallenge sequence in `out_dir`: frames as
    img1/000001.jpg... (or one MJPG .avi with video=True), gt/gt.txt and seqinfo.ini.
    Returns the paths written."""
    import cv2   # here, so reading files does not need OpenCV

    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    name = name or f'synthetic-{scene.seed}'
    os.makedirs(out_dir, exist_ok=True)
    paths = {'gt': os.path.join(out_dir, 'gt', 'gt.txt'),
             'seqinfo': os.path.join(out_dir, 'seqinfo.ini')}
    extra = {}
    writer = None
    if video:
        paths['video'] = os.path.join(out_dir, name + '.avi')
        writer = cv2.VideoWriter(paths['video'], cv2.VideoWriter_fourcc(*'MJPG'), frame_rate,
                                 (scene.width, scene.height))
        if not writer.isOpened():
            raise RuntimeError(f'OpenCV cannot write MJPG video to {paths["video"]}')
        extra['video'] = name + '.avi'
    else:
        paths['images'] = os.path.join(out_dir, 'img1')
        os.makedirs(paths['images'], exist_ok=True)
    buf = None
    rows: List[Tuple] = []
    try:
        for index in range(num_frames):
            buf = scene.render(index, buf)
            if writer is not None:
                writer.write(buf)
            else:
                target = os.path.join(paths['images'], f'{index + 1:06d}{im_ext}')
                if not cv2.imwrite(target, buf):
                    raise RuntimeError(f'cannot write {target}')
            rows.extend(_gt_row(index + 1, b) for b in scene.ground_truth(index, min_visibility))
    finally:
        if writer is not None:
            writer.release()
    write_gt(paths['gt'], rows)
    write_seqinfo(paths['seqinfo'], name, frame_rate, num_frames, scene.width, scene.height,
                  'img1', im_ext, extra)
    return paths


def _ensure_parent(path: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)


# --- sequences on disk and their scoring ---------------------------------------------------

@dataclass
class MotSequence:
    """One sequence folder: its name is the folder's; fps and length come from seqinfo.ini
    (None where there is none)."""
    name: str
    gt: str
    det: Optional[str]
    frame_rate: Optional[float]
    length: Optional[int]


def _first_file(folder: str, *names: str) -> Optional[str]:
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def sequence_folder(gt_path: str) -> str:
    """The sequence folder of a gt file: SEQ for SEQ/gt.txt and for SEQ/gt/gt.txt."""
    folder = os.path.dirname(os.path.abspath(gt_path))
    if os.path.basename(folder) == 'gt' and not os.path.isfile(os.path.join(folder, 'seqinfo.ini')):
        folder = os.path.dirname(folder)
    return folder


def load_sequence(gt_path: str, det_path: Optional[str] = None) -> MotSequence:
    """The sequence of a gt file, its det.txt (SEQ/det.txt or SEQ/det/det.txt unless given)
    and its seqinfo.ini."""
    folder = sequence_folder(gt_path)
    det = det_path or _first_file(folder, 'det.txt', os.path.join('det', 'det.txt'))
    info_path = _first_file(folder, 'seqinfo.ini')
    info = read_seqinfo(info_path) if info_path else {}
    rate = info.get('frameRate')
    length = info.get('seqLength')
    return MotSequence(os.path.basename(folder), gt_path, det,
                       float(rate) if rate is not None else None,
                       int(length) if length is not None else None)


def find_sequences(root: str) -> List[MotSequence]:
    """Sequences under `root` (itself one, or a folder of them), sorted by name. A sequence
    folder holds gt.txt or gt/gt.txt, and det.txt or det/det.txt."""
    def gt_of(folder):
        return _first_file(folder, 'gt.txt', os.path.join('gt', 'gt.txt'))
    if gt_of(root):
        return [load_sequence(gt_of(root))]
    found = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        gt = gt_of(os.path.join(root, name))
        if gt:
            found.append(load_sequence(gt))
    return found


# MOTChallenge's ground-truth rules, as TrackEval applies them: MOT16/17/20 score consider=1 rows
# of class 1 (pedestrian); a track box that best matches (IoU >= 0.5, one-to-one) a box of a
# distractor class is dropped, neither a false positive nor a hit. MOT15 has no classes: it
# scores consider=1 rows and drops nothing. 'all' scores every consider=1 row whatever its class
# (the synthetic scene, whose classes are shapes). Visibility is not used by any of them.
PEDESTRIAN = 1
DISTRACTOR_CLASSES = (2, 7, 8, 12)   # person on vehicle, static person, distractor, reflection
RULES = ('MOT17', 'MOT15', 'all')


def score(gt: MotData, tracks: Dict[int, Tuple[np.ndarray, np.ndarray]], num_frames: int,
          rules: str = 'MOT17') -> Dict[str, dict]:
    """CLEAR, HOTA and Identity metrics (roboflow `trackers.eval`, TrackEval's definitions) of
    `tracks` {frame: (ids, xyxy boxes)} against `gt` over frames 1..num_frames. Returns the
    library's per-sequence dicts, which `summary` reads and `combine` adds up."""
    from trackers.eval import (box_iou, compute_clear_metrics, compute_hota_metrics,
                               compute_identity_metrics)
    if rules not in RULES:
        raise ValueError(f'rules must be one of {RULES}, got {rules!r}')
    gt_ids, track_ids, sims = [], [], []
    gt_map: Dict[int, int] = {}
    track_map: Dict[int, int] = {}
    for frame in range(1, num_frames + 1):
        truth = gt.get(frame)
        ids, boxes = tracks.get(frame, (np.zeros(0, np.int64), np.zeros((0, 4))))
        ids = np.asarray(ids, np.int64).reshape(-1)
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        iou = box_iou(truth.boxes, boxes)
        considered = truth.confidences != 0
        if rules == 'MOT17':
            distractor = np.isin(truth.classes, DISTRACTOR_CLASSES)
            if distractor.any() and len(ids):
                # All gt boxes compete (as in TrackEval), so a track box on a pedestrian is not
                # taken away by a distractor it also overlaps.
                match = np.where(iou < 0.5 - np.finfo(float).eps, 0.0, iou)
                rows, cols = linear_sum_assignment(-match)
                hit = match[rows, cols] > np.finfo(float).eps
                drop = cols[hit][distractor[rows[hit]]]
                keep = np.ones(len(ids), bool)
                keep[drop] = False
                ids, iou = ids[keep], iou[:, keep]
            scored = considered & (truth.classes == PEDESTRIAN)
        else:
            scored = considered
        gt_ids.append(np.array([gt_map.setdefault(int(i), len(gt_map))
                                for i in truth.ids[scored]], np.intp))
        track_ids.append(np.array([track_map.setdefault(int(i), len(track_map)) for i in ids],
                                  np.intp))
        sims.append(iou[scored])
    return {'CLEAR': compute_clear_metrics(gt_ids, track_ids, sims),
            'HOTA': compute_hota_metrics(gt_ids, track_ids, sims),
            'Identity': compute_identity_metrics(gt_ids, track_ids, sims)}


def combine(scores: Sequence[Dict[str, dict]]) -> Dict[str, dict]:
    """Several sequences' `score` results as one, the way TrackEval combines sequences."""
    from trackers.eval import (aggregate_clear_metrics, aggregate_hota_metrics,
                               aggregate_identity_metrics)
    return {'CLEAR': aggregate_clear_metrics([s['CLEAR'] for s in scores]),
            'HOTA': aggregate_hota_metrics([s['HOTA'] for s in scores]),
            'Identity': aggregate_identity_metrics([s['Identity'] for s in scores])}


def summary(result: Dict[str, dict]) -> Dict[str, float]:
    """The headline numbers of a `score` or `combine` result."""
    return {'HOTA': float(result['HOTA']['HOTA']), 'MOTA': float(result['CLEAR']['MOTA']),
            'IDF1': float(result['Identity']['IDF1']), 'IDSW': int(result['CLEAR']['IDSW'])}


# --- a camera moving forward, simulated on a still camera's sequence -----------------------

@dataclass(frozen=True)
class ForwardMotion:
    """A camera moving towards the scene, applied to a still camera's gt and det boxes.

    Every object is put at the depth its box height says (depth ~ 1 / height) when it is first
    seen, and the camera then approaches it at a constant speed: after `elapsed` seconds its
    box is scaled by s = tau / (tau - elapsed) about the focus of expansion (the image centre),
    tau being its time to contact, `contact_s` for a box a quarter of the image high and
    proportionally longer for smaller (farther) ones. So near objects grow and move outwards
    faster than far ones, as from a moving car or a walking person. An object is gone for good
    once less than half of its box is inside the image or it is within 0.3 s of contact.
    A detection moves with the gt box it overlaps best (IoU >= 0.3), an unmatched one with
    the nearest gt box of its frame (none: dropped). `sway` (a fraction of the image height)
    adds a walker's vertical bob at 2 Hz to every box; `every` keeps every Nth frame only.
    """
    every: int = 3
    contact_s: float = 3.0
    sway: float = 0.0


FORWARD_PRESETS = {
    # A car: 10 fps from 30, near pedestrians pass within a few seconds.
    'car': ForwardMotion(every=3, contact_s=3.0, sway=0.0),
    # A walking person: 15 fps from 30, half the speed, a step's bob.
    'walk': ForwardMotion(every=2, contact_s=6.0, sway=0.01),
}
_MIN_CONTACT_S = 0.3
_DET_MATCH_IOU = 0.3
_SWAY_HZ = 2.0


def _inside_share(xyxy: np.ndarray, width: float, height: float) -> np.ndarray:
    w = np.clip(xyxy[:, 2], 0, width) - np.clip(xyxy[:, 0], 0, width)
    h = np.clip(xyxy[:, 3], 0, height) - np.clip(xyxy[:, 1], 0, height)
    area = np.maximum((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 1e-9)
    return np.maximum(w, 0) * np.maximum(h, 0) / area


def forward_motion(seq: MotSequence, width: int, height: int, motion: ForwardMotion,
                   out_dir: str, name: Optional[str] = None) -> MotSequence:
    """Writes `seq` as seen from a camera moving forward (`ForwardMotion`) into `out_dir`
    (gt.txt, det.txt, seqinfo.ini) and returns the new sequence."""
    from edge_tracker.core.bytetrack import box_iou
    fps = seq.frame_rate or 30.0
    gt, det = _read_table(seq.gt)[0], _read_table(seq.det)[0]
    focus = np.array([width / 2.0, height / 2.0])
    first_seen: Dict[int, int] = {}
    gone: set = set()
    gt_out, det_out = [], []
    last = int(max(gt[:, 0].max(initial=0), det[:, 0].max(initial=0)))
    if seq.length:
        last = max(last, seq.length)
    for frame in range(1, last + 1):
        g = gt[gt[:, 0] == frame]
        t = (frame - 1) / fps
        xyxy = np.stack([g[:, 2], g[:, 3], g[:, 2] + g[:, 4], g[:, 3] + g[:, 5]], axis=1)
        scale = np.ones(len(g))
        keep = np.ones(len(g), bool)
        for i, tid in enumerate(g[:, 1].astype(int)):
            first = first_seen.setdefault(tid, frame)
            tau = motion.contact_s * (height / 4.0) / max(g[i, 5], 1.0)
            left = tau - (frame - first) / fps
            if tid in gone or left < _MIN_CONTACT_S:
                gone.add(tid)
                keep[i] = False
            else:
                scale[i] = tau / left
        bob = np.array([0.0, motion.sway * height * np.sin(2 * np.pi * _SWAY_HZ * t)])
        shift = np.concatenate([focus, focus]) * (1 - scale[:, None]) + np.concatenate([bob, bob])
        warped = xyxy * scale[:, None] + shift
        out_of_view = _inside_share(warped, width, height) < 0.5
        for tid in g[out_of_view & keep, 1].astype(int):
            gone.add(tid)
        keep &= ~out_of_view
        d = det[det[:, 0] == frame]
        d_xyxy = np.stack([d[:, 2], d[:, 3], d[:, 2] + d[:, 4], d[:, 3] + d[:, 5]], axis=1)
        of_det = np.full(len(d), -1)
        if len(d) and len(g):
            iou = box_iou(d_xyxy, xyxy)
            rows, cols = linear_sum_assignment(-iou)
            ok = iou[rows, cols] >= _DET_MATCH_IOU
            of_det[rows[ok]] = cols[ok]
            kept = np.flatnonzero(keep)
            if len(kept):
                centre = 0.5 * (d_xyxy[:, :2] + d_xyxy[:, 2:])
                g_centre = 0.5 * (xyxy[kept, :2] + xyxy[kept, 2:])
                nearest = kept[np.argmin(((centre[:, None] - g_centre[None]) ** 2).sum(-1), 1)]
                of_det[of_det < 0] = nearest[of_det < 0]
        d_keep = of_det >= 0
        d_keep[d_keep] = keep[of_det[d_keep]]
        d_warped = d_xyxy[d_keep] * scale[of_det[d_keep], None] + shift[of_det[d_keep]]
        inside = _inside_share(d_warped, width, height) >= 0.5
        if (frame - 1) % motion.every:
            continue
        new_frame = (frame - 1) // motion.every + 1
        for row, box in zip(g[keep], warped[keep]):
            gt_out.append((new_frame, row[1], box[0], box[1], box[2] - box[0], box[3] - box[1],
                           row[6], row[7], row[8]))
        for row, box in zip(d[d_keep][inside], d_warped[inside]):
            det_out.append((new_frame, -1, box[0], box[1], box[2] - box[0], box[3] - box[1],
                            row[6]))
    name = name or seq.name
    os.makedirs(out_dir, exist_ok=True)
    gt_path, det_path = os.path.join(out_dir, 'gt.txt'), os.path.join(out_dir, 'det.txt')
    write_gt(gt_path, gt_out)
    write_results(det_path, det_out)
    length = (last - 1) // motion.every + 1
    rate = fps / motion.every
    write_seqinfo(os.path.join(out_dir, 'seqinfo.ini'), name, rate, length, width, height)
    return MotSequence(name, gt_path, det_path, rate, length)
