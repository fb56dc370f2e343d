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

    def __init__(self, frames: Dict[int, MotFrame]) -> None:
        self.frames = frames

    def get(self, frame: int) -> MotFrame:
        found = self.frames.get(frame)
        return found if found is not None else MotFrame.empty()

    @property
    def last_frame(self) -> int:
        return max(self.frames, default=0)

    def __len__(self) -> int:
        return sum(len(f) for f in self.frames.values())


def read_mot(path: str, kind: str = 'gt', min_confidence: Optional[float] = None) -> MotData:
    """Reads a MOT text file. kind='gt': columns 8 and 9 are class and visibility (gt.txt);
    kind='det': columns 8+ are the unused world coordinates of det.txt and tracker results.
    Rows with conf below `min_confidence` are dropped (for gt, conf 0 means 'ignore')."""
    if kind not in ('gt', 'det'):
        raise ValueError(f"kind must be 'gt' or 'det', got {kind!r}")
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
                values = [float(p) for p in parts[:9]]
            except ValueError:
                raise ValueError(f'{path}:{line_no}: not a number in {line!r}') from None
            rows.append(values)
    frames: Dict[int, MotFrame] = {}
    if not rows:
        return MotData(frames)
    width = max(len(r) for r in rows)
    table = np.full((len(rows), max(width, 9)), np.nan)
    for i, r in enumerate(rows):
        table[i, :len(r)] = r
    conf = np.where(np.isnan(table[:, 6]), 1.0, table[:, 6])
    if kind == 'gt':
        classes = np.where(np.isnan(table[:, 7]), -1, table[:, 7]).astype(np.int64)
        vis = np.where(np.isnan(table[:, 8]), 1.0, table[:, 8])
    else:
        classes = np.full(len(rows), -1, np.int64)
        vis = np.ones(len(rows))
    keep = np.ones(len(rows), bool) if min_confidence is None else conf >= min_confidence
    frame_col = table[:, 0].astype(np.int64)
    xyxy = np.stack([table[:, 2], table[:, 3], table[:, 2] + table[:, 4],
                     table[:, 3] + table[:, 5]], axis=1)
    ids = table[:, 1].astype(np.int64)
    for frame in np.unique(frame_col[keep]):
        sel = keep & (frame_col == frame)
        frames[int(frame)] = MotFrame(ids[sel], xyxy[sel], conf[sel], classes[sel], vis[sel])
    return MotData(frames)


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
