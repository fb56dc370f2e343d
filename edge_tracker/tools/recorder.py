"""A node that listens to a pipeline like a robot would and records what it sees: tracks (as
JSON lines), the annotated video, thermal state, rates and latency. Used by the demo and eval."""

import json
import threading
import time
from typing import Dict, List, Optional

import cv2
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, Temperature
from std_msgs.msg import UInt8
from vision_msgs.msg import Detection2DArray

from edge_tracker.conversions import ImageError, image_to_bgr, stamp_to_seconds
from edge_tracker.core.governor import LEVEL_NAMES
from edge_tracker.core.stats import DurationStats, RateMeter
from edge_tracker.qos import image_qos, latched_qos, results_qos, state_qos


def track_rows(msg: Detection2DArray) -> List[Dict]:
    """Plain dictionaries of a tracks message (what tracks.jsonl holds per frame)."""
    rows = []
    for d in msg.detections:
        best = max(d.results, key=lambda r: r.hypothesis.score) if d.results else None
        rows.append({
            'id': d.id,
            'class': best.hypothesis.class_id if best else '',
            'score': round(best.hypothesis.score, 4) if best else 0.0,
            'x': round(d.bbox.center.position.x - d.bbox.size_x / 2, 2),
            'y': round(d.bbox.center.position.y - d.bbox.size_y / 2, 2),
            'w': round(d.bbox.size_x, 2), 'h': round(d.bbox.size_y, 2),
            'predicted': d.header.stamp != msg.header.stamp,
        })
    return rows


class Recorder(Node):
    def __init__(self, tracks_path: Optional[str] = None, video_path: Optional[str] = None,
                 video_fps: float = 15.0, snapshot_every: int = 0,
                 snapshot_prefix: str = '', **node_kwargs) -> None:
        super().__init__('recorder', **node_kwargs)
        self._lock = threading.Lock()
        self.frames = 0
        self.tracks: Dict[float, List[Dict]] = {}
        self.latency = DurationStats(300)
        self.camera_rate, self.tracks_rate = RateMeter(), RateMeter()
        self.detections_rate = RateMeter()
        self.inferred = 0   # detections messages: one per frame the detector ran on
        self.temperature: Optional[float] = None
        self.zone = ''
        self.level = 0
        self.level_changes: List[str] = []
        self.annotated = 0
        self._tracks_file = open(tracks_path, 'w', encoding='utf-8') if tracks_path else None
        self._video_path, self._video_fps = video_path, video_fps
        self._writer = None
        self._snapshot_every, self._snapshot_prefix = snapshot_every, snapshot_prefix
        self.snapshots: List[str] = []
        self.create_subscription(CameraInfo, 'camera_info', self._on_info, image_qos('best_effort', 5))
        self.create_subscription(Detection2DArray, 'tracks', self._on_tracks, results_qos())
        self.create_subscription(Detection2DArray, 'detections', self._on_detections,
                                 results_qos())
        self.create_subscription(Temperature, 'thermal/temperature', self._on_temp, state_qos())
        self.create_subscription(UInt8, 'thermal/throttle', self._on_level, latched_qos())
        if video_path or snapshot_every:
            self.create_subscription(Image, 'annotated_image', self._on_annotated,
                                     image_qos('best_effort', 1))

    def _on_info(self, _msg: CameraInfo) -> None:
        self.frames += 1
        self.camera_rate.tick()

    def _on_detections(self, _msg: Detection2DArray) -> None:
        self.inferred += 1
        self.detections_rate.tick()

    def _on_tracks(self, msg: Detection2DArray) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        stamp = stamp_to_seconds(msg.header.stamp)
        rows = track_rows(msg)
        with self._lock:
            self.tracks[stamp] = rows
        self.latency.add(now - stamp)
        self.tracks_rate.tick()
        if self._tracks_file is not None:
            self._tracks_file.write(json.dumps({'stamp': round(stamp, 6),
                                                'frame_id': msg.header.frame_id,
                                                'tracks': rows}) + '\n')

    def _on_temp(self, msg: Temperature) -> None:
        self.temperature, self.zone = msg.temperature, msg.header.frame_id

    def _on_level(self, msg: UInt8) -> None:
        level = min(3, int(msg.data))
        if level != self.level:
            self.level_changes.append(f'{time.strftime("%H:%M:%S")} level {level} '
                                      f'({LEVEL_NAMES[level]}) at {self.temperature} C')
        self.level = level

    def _on_annotated(self, msg: Image) -> None:
        try:
            frame = image_to_bgr(msg)
        except ImageError:
            return
        self.annotated += 1
        if self._video_path:
            if self._writer is None:
                self._writer = cv2.VideoWriter(self._video_path, cv2.VideoWriter_fourcc(*'MJPG'),
                                               self._video_fps, (frame.shape[1], frame.shape[0]))
            self._writer.write(frame)
        if self._snapshot_every and self.annotated % self._snapshot_every == 0:
            path = f'{self._snapshot_prefix}{self.annotated:05d}.png'
            cv2.imwrite(path, frame)
            self.snapshots.append(path)

    def latency_ms(self) -> Dict[str, float]:
        summary = self.latency.summary_ms()
        return {'p50': summary['p50_ms'], 'p95': summary['p95_ms']}

    def close(self) -> None:
        if self._tracks_file is not None:
            self._tracks_file.close()
            self._tracks_file = None
        if self._writer is not None:
            self._writer.release()
            self._writer = None
