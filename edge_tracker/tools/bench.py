"""`bench`: where the time goes, on the same frames, from a bare predict loop to the ROS graph.

For each input (the sample video, the synthetic scene) at each size it measures:

  (a1) predict    Ultralytics' own loop: YOLO(model).predict on frames decoded beforehand,
                 1 torch thread (the faster of two passes)
  (a)  predict    the same with --threads torch threads (default: every core)
  (a2) parallel   --workers such loops at once, each model on a thread of its own with one
                 torch thread, taking the next frame as they finish: the most this machine
                 does with this model and backend
  (b)  naive      one thread: decode/resize -> Detector.detect -> Tracker.update -> draw
  (c)  ros_nodes  camera_node, detector_node, tracker_node as separate processes, detector at
                 its default (automatic) workers and threads; camera at 1.2x (a2)'s rate
  (c30)           the same with the camera at 30 Hz
  (d)  pipeline   the single-process `pipeline` executable (pi profile, thermal off), camera
                 at 1.2x (a2)'s rate
  (d30)           the same with the camera at 30 Hz

and a Tracker.update micro-benchmark at 10, 50 and 200 boxes. For (c), (c30), (d), (d30) it splits
the CPU per camera frame into camera (capture + publish), detector outside inference
(transport, deserialisation, hand-over, publishing), inference and tracker (tracking and
predicted tracks), and reports the glue (all but inference) as a share of inference CPU.
Prints a table, checks the targets and writes every figure to a JSON file.

    python -m edge_tracker.tools.bench [--frames 150] [--quick] [--skip-ros] [--json PATH]
"""

import argparse
import datetime
import json
import math
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from edge_tracker.tools import message_cost
from edge_tracker.tools.procs import (FALLBACK_MODEL, PROJECT_MODEL, BackgroundSpinner, Child,
                                      default_model, executable, process_tree,
                                      stop_all, tree_rss_kb)
from edge_tracker.tools.procs import isolate as ros_environment

REPO = Path(__file__).resolve().parents[2]
VIDEO_DIR = REPO.parent / 'shared' / 'data' / 'videos'
VIDEO_NAME = 'car-detection.mp4'
SIZES = ((640, 480), (1280, 720))
INPUTS = ('video', 'synthetic')
TRACKER_BOXES = (10, 50, 200)
# Targets of the issue "Proof on data".
PARALLEL_RATIO_GOAL = 0.85        # (c) / (a2) fps, camera faster than the detector
SEQUENTIAL_RATIO_GOAL = 1.3       # (c) / (a) fps
CAMERA_HZ = 30.0                  # (c30)'s camera
INFERRED_SHARE_GOAL = 29.0 / 30.0  # (c30): frames inferred / camera frames
TRACKS_SHARE_GOAL = 0.98          # (c30): tracks messages / camera frames
LATENCY_EXTRA_GOAL_MS = 15.0      # (c30) e2e p50 - (a1) p50
GLUE_SHARE_GOAL = 0.15            # (c30) CPU outside inference / inference CPU
# Per camera frame in (c30), counting the graph's nodes only (not the bench's observer):
# published image_raw, detections (or the skip notice), tracks; taken by the detector the
# image, by the tracker the detections. Each in-flight notice (a frame still inferred when a
# newer one's results go out) adds one of each.
MESSAGES_PER_FRAME = (3, 2)
TRACKING_GOAL_MS = 1.0            # Tracker.update at 50 boxes
CLK_TCK = os.sysconf('SC_CLK_TCK')
WARMUP_S = 3.0   # least warm-up of the predict loop (frames: --quick 3, else 10)
STARTED = time.monotonic()
TOPIC_ORDER_SLACK_S = 0.01   # detections may reach the probe just after their tracks
BUSY_PCT = 15.0   # other processes' CPU (100 = one core) above which figures are suspect


def stats_ms(values_s: Sequence[float]) -> Dict[str, float]:
    """mean / p50 / p95 in milliseconds of durations given in seconds."""
    v = np.asarray(values_s, dtype=np.float64) * 1e3
    if v.size == 0:
        return {'mean': 0.0, 'p50': 0.0, 'p95': 0.0}
    p50, p95 = np.percentile(v, [50, 95])
    return {'mean': float(v.mean()), 'p50': float(p50), 'p95': float(p95)}


# ----- machine, versions ----------------------------------------------------------------------

def machine_info() -> Dict[str, object]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return {'cpu_model': model, 'cores': os.cpu_count(), 'arch': platform.machine(),
            'kernel': platform.release(),
            'mem_gb': round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30, 1)}


def versions(ros: bool) -> Dict[str, str]:
    from importlib import metadata
    out = {'python': platform.python_version()}
    for dist in ('torch', 'ultralytics', 'trackers', 'supervision', 'opencv-python', 'numpy',
                 'onnxruntime', 'openvino'):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    if ros:
        rclpy_version = ''
        for dist in ('rclpy', 'ros-rclpy'):
            try:
                rclpy_version = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                pass
        # Wheels set no ROS_DISTRO; rclpy's major version names the distro.
        by_major = {'3': 'humble', '4': 'iron', '7': 'jazzy', '9': 'kilted', '10': 'rolling'}
        out['rclpy'] = rclpy_version
        out['ros_distro'] = os.environ.get('ROS_DISTRO') or \
            by_major.get(rclpy_version.split('.')[0], 'unknown')
        out['rmw'] = os.environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    return out


# ----- /proc sampling -------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children (all threads), seconds."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f'/proc/{p}/stat').read_text().rsplit(')', 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def rss_mb(pid: int) -> float:
    return (tree_rss_kb(pid) or 0) / 1024.0


def machine_busy_seconds() -> float:
    """CPU seconds spent by everything on the machine (all cores), from /proc/stat."""
    fields = [int(x) for x in Path('/proc/stat').read_text().split('\n', 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


class CpuWindow:
    """CPU % (100 = one core) of given processes over a window, and what else ran meanwhile."""

    def __init__(self, pids: Dict[str, int], own: str = '') -> None:
        self.pids = pids
        self.own = own   # this process: without its children, which are measured apart
        self.t0 = time.monotonic()
        self.busy0 = machine_busy_seconds()
        self.cpu0 = {k: self._cpu(k) for k in pids}

    def _cpu(self, key: str) -> float:
        if key == self.own:
            t = os.times()
            return t.user + t.system
        return cpu_seconds(self.pids[key])

    def end(self) -> Dict[str, Dict[str, float]]:
        wall = max(1e-6, time.monotonic() - self.t0)
        cpu = {k: 100.0 * max(0.0, self._cpu(k) - self.cpu0[k]) / wall for k in self.pids}
        machine = 100.0 * (machine_busy_seconds() - self.busy0) / wall
        rss = {k: rss_mb(p) for k, p in self.pids.items() if k != self.own}
        return {'cpu_pct': cpu, 'rss_mb': rss,
                'machine_cpu_pct': machine,
                'other_cpu_pct': max(0.0, machine - sum(cpu.values()))}


def own_cpu_window() -> CpuWindow:
    return CpuWindow({'bench': os.getpid()}, own='bench')


def own_cpu(window: CpuWindow) -> Dict[str, float]:
    """The bench process's CPU % over `window`, and what everything else used meanwhile."""
    load = window.end()
    return {'cpu_pct': load['cpu_pct']['bench'], 'other_cpu_pct': load['other_cpu_pct']}


# ----- inputs ---------------------------------------------------------------------------------

def video_path() -> Path:
    path = VIDEO_DIR / VIDEO_NAME
    if not path.is_file():
        raise SystemExit(f'bench: the sample video {path} is missing (it lives in '
                         f'shared/data/videos beside the checkout {REPO}); use --inputs synthetic '
                         'to run without it')
    return path


def source_text(kind: str) -> str:
    """The camera node's `source` for an input; the naive loop opens the same one."""
    return str(video_path()) if kind == 'video' else 'synthetic'


def open_capture(kind: str, width: int, height: int):
    """Exactly the camera node's capture path: the source (looping) and its resizer."""
    from edge_tracker.core.sources import Resizer, open_source, parse_source
    source = open_source(parse_source(source_text(kind)), width, height, loop=True)
    return source, Resizer(width, height)


def decode_frames(kind: str, width: int, height: int, count: int):
    """`count` frames decoded (rendered) and resized up front, and the capture times."""
    source, resize = open_capture(kind, width, height)
    frames, times = [], []
    try:
        while len(frames) < count:
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                raise SystemExit(f'bench: cannot read frames from {source_text(kind)}')
            frame = resize(frame)
            times.append(time.perf_counter() - t0)
            frames.append(frame.copy())   # the source reuses its buffer
    finally:
        source.release()
    return frames, times


# ----- (a) standalone predict, (b) naive loop ----------------------------------------------

def set_torch_threads(threads: int) -> None:
    # Ultralytics sets torch to cores - 1 threads when a predictor starts: set ours after it.
    if threads > 0:
        import torch
        torch.set_num_threads(threads)


def bench_predict(yolo, frames, kwargs: Dict, threads: int, warmup: int,
                  passes: int = 2) -> Dict:
    """The fastest of `passes` runs over the frames: the baseline the ratios divide by, so a
    stall of this shared machine during one pass must not flatter the ROS variants."""
    yolo.predict(frames[0], **kwargs)   # sets the predictor up, which resets torch's threads
    set_torch_threads(threads)
    settle = time.monotonic() + WARMUP_S
    for i in range(10 ** 6):
        if i >= warmup and time.monotonic() > settle:
            break
        yolo.predict(frames[i % len(frames)], **kwargs)
    runs = [_predict_pass(yolo, frames, kwargs) for _ in range(max(1, passes))]
    best = max(runs, key=lambda r: r['fps'])
    best['pass_fps'] = [r['fps'] for r in runs]
    import torch
    best['torch_threads'] = torch.get_num_threads()
    return best


def _predict_pass(yolo, frames, kwargs: Dict) -> Dict:
    walls, pre, inf, post = [], [], [], []
    window, t_start = own_cpu_window(), time.perf_counter()
    for frame in frames:
        t0 = time.perf_counter()
        result = yolo.predict(frame, **kwargs)[0]
        walls.append(time.perf_counter() - t0)
        pre.append(result.speed['preprocess'])
        inf.append(result.speed['inference'])
        post.append(result.speed['postprocess'])
    elapsed = time.perf_counter() - t_start
    latency = stats_ms(walls)
    return {'fps': len(frames) / elapsed, 'latency_ms': latency,
            'detect_ms': latency['mean'], 'preprocess_ms': float(np.mean(pre)),
            'inference_ms': float(np.mean(inf)), 'postprocess_ms': float(np.mean(post)),
            **own_cpu(window)}


def bench_parallel(model_path: str, frames, kwargs: Dict, workers: int, warmup: int) -> Dict:
    """(a2): `workers` models, each loaded, warmed up and run on a thread of its own with one
    torch thread (set on that thread, after its predictor set-up reset it), each taking the
    next frame when it finishes one: every frame inferred once, none dropped."""
    import torch
    from ultralytics import YOLO
    gate = threading.Barrier(workers + 1)
    lock = threading.Lock()
    position = [0]
    walls: List[float] = []
    errors: List[BaseException] = []

    def work() -> None:
        yolo = None
        try:
            yolo = YOLO(model_path, task='detect')
            yolo.predict(frames[0], **kwargs)
            torch.set_num_threads(1)
            settle = time.monotonic() + WARMUP_S
            for i in range(10 ** 6):
                if i >= warmup and time.monotonic() > settle:
                    break
                yolo.predict(frames[i % len(frames)], **kwargs)
        except Exception as exc:   # reported after the barrier, by the main thread
            errors.append(exc)
        gate.wait()   # everyone warm
        gate.wait()   # go
        while yolo is not None and not errors:
            with lock:
                index = position[0]
                position[0] += 1
            if index >= len(frames):
                return
            t0 = time.perf_counter()
            yolo.predict(frames[index], **kwargs)
            dt = time.perf_counter() - t0
            with lock:
                walls.append(dt)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    gate.wait()
    if errors:
        gate.abort()
        raise SystemExit(f'bench: the parallel predict loop failed: {errors[0]!r}')
    window, t_start = own_cpu_window(), time.perf_counter()
    gate.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t_start
    latency = stats_ms(walls)
    return {'fps': len(walls) / elapsed, 'latency_ms': latency, 'detect_ms': latency['mean'],
            'workers': workers, 'threads': 1, **own_cpu(window)}


def bench_naive(detector, kind: str, width: int, height: int, count: int, tracker_options: Dict,
                trail_length: int, threads: int, warmup: int) -> Dict:
    from edge_tracker.core.annotate import Annotator
    from edge_tracker.core.tracking import Tracker
    source, resize = open_capture(kind, width, height)
    tracker, annotator = Tracker(**tracker_options), Annotator(trail_length)
    times = {k: [] for k in ('capture', 'detect', 'track', 'draw', 'frame')}
    speed = {k: [] for k in ('preprocess', 'inference', 'postprocess')}
    try:
        for _ in range(warmup):
            frame = source.read()
            if frame is not None:
                detector.detect(resize(frame))
        set_torch_threads(threads)
        window, t_start = own_cpu_window(), time.perf_counter()
        for _ in range(count):
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                raise SystemExit(f'bench: cannot read frames from {source_text(kind)}')
            frame = resize(frame)
            stamp = time.time()   # as the camera stamps its frames
            t1 = time.perf_counter()
            dets = detector.detect(frame)
            t2 = time.perf_counter()
            tracks = tracker.update(dets, stamp)
            t3 = time.perf_counter()
            annotator.draw(frame, tracks)
            t4 = time.perf_counter()
            for key, dt in (('capture', t1 - t0), ('detect', t2 - t1), ('track', t3 - t2),
                            ('draw', t4 - t3), ('frame', t4 - t0)):
                times[key].append(dt)
            for key in speed:
                speed[key].append(detector.last_speed_ms.get(key, 0.0))
        elapsed = time.perf_counter() - t_start
        load = own_cpu(window)
    finally:
        source.release()
    return {'fps': count / elapsed, 'latency_ms': stats_ms(times['frame']),
            'capture_ms': 1e3 * float(np.mean(times['capture'])),
            'detect_ms': 1e3 * float(np.mean(times['detect'])),
            'preprocess_ms': float(np.mean(speed['preprocess'])),
            'inference_ms': float(np.mean(speed['inference'])),
            'postprocess_ms': float(np.mean(speed['postprocess'])),
            'tracking_ms': 1e3 * float(np.mean(times['track'])),
            'drawing_ms': 1e3 * float(np.mean(times['draw'])), **load}


# ----- tracker micro-benchmark ----------------------------------------------------------------

def bench_tracker(counts: Sequence[int], frames: int, tracker_options: Dict) -> Dict:
    """Tracker.update per frame with n boxes on a grid drifting together (every box matched
    every frame, as in a steady scene), and roboflow trackers' ByteTrackTracker on the same
    boxes for reference (the implementation edge_tracker's batched one replaced)."""
    import supervision as sv
    from trackers import ByteTrackTracker

    from edge_tracker.core.tracking import Tracker
    rng = np.random.default_rng(0)
    out = {}
    warmup = 10
    for n in counts:
        cols = int(np.ceil(np.sqrt(n * 16 / 9)))
        rows = int(np.ceil(n / cols))
        cw, ch = 1280.0 / cols, 720.0 / rows
        cx = (np.arange(n) % cols + 0.5) * cw
        cy = (np.arange(n) // cols + 0.5) * ch
        half = np.stack([np.full(n, cw * 0.3), np.full(n, ch * 0.3)], axis=1)
        dets = []
        for f in range(frames + warmup):
            centre = np.stack([cx + 1.5 * f, cy + 0.5 * f], axis=1) + rng.normal(0, 0.5, (n, 2))
            dets.append(sv.Detections(
                xyxy=np.hstack([centre - half, centre + half]),
                confidence=rng.uniform(0.6, 0.95, n).astype(np.float32),
                class_id=np.zeros(n, dtype=int)))
        wrapped = Tracker(**tracker_options)
        o = tracker_options
        raw = ByteTrackTracker(frame_rate=o['frame_rate'],
                               track_activation_threshold=o['track_activation_threshold'],
                               minimum_consecutive_frames=o['minimum_consecutive_frames'],
                               minimum_iou_threshold=o['minimum_iou_threshold'],
                               high_conf_det_threshold=o['high_conf_det_threshold'],
                               lost_track_buffer=int(o['lost_track_buffer']))
        t_wrapped, t_raw, tracked = [], [], 0
        for f, d in enumerate(dets):
            stamp = f / o['frame_rate']
            t0 = time.perf_counter()
            result = wrapped.update(d, stamp)
            t1 = time.perf_counter()
            raw.update(d, timestamp=stamp)
            t2 = time.perf_counter()
            if f >= warmup:
                t_wrapped.append(t1 - t0)
                t_raw.append(t2 - t1)
                tracked += len(result)
        s = stats_ms(t_wrapped)
        r = stats_ms(t_raw)
        out[str(n)] = {'update_ms': s['p50'], 'update_mean_ms': s['mean'],
                       'update_p95_ms': s['p95'], 'bytetrack_ms': r['p50'],
                       'bytetrack_mean_ms': r['mean'],
                       'tracked_per_frame': tracked / max(1, len(t_wrapped))}
    return out


def bench_compressed(frames, quality: int = 80) -> Dict:
    """What image_raw/compressed costs per frame on these frames: the camera's JPEG encoding
    (CompressedWriter, at the camera's default jpeg_quality) and the detector's decoding
    (compressed_to_bgr), against building and reading the raw bgr8 message, and the sizes."""
    from std_msgs.msg import Header

    from edge_tracker.conversions import (CompressedWriter, ImageWriter, compressed_to_bgr,
                                          image_to_bgr)
    jpeg, raw = CompressedWriter(), ImageWriter()
    encode, decode, write, read, sizes = [], [], [], [], []
    header = Header()
    for i, frame in enumerate(list(frames[:3]) + list(frames)):   # 3 frames of warm-up
        t0 = time.perf_counter()
        msg = jpeg.write(frame, header, quality)
        t1 = time.perf_counter()
        compressed_to_bgr(msg)
        t2 = time.perf_counter()
        image = raw.write(frame, header)
        t3 = time.perf_counter()
        image_to_bgr(image)
        t4 = time.perf_counter()
        if i >= 3:
            encode.append(t1 - t0)
            decode.append(t2 - t1)
            write.append(t3 - t2)
            read.append(t4 - t3)
            sizes.append(len(msg.data))
    return {'jpeg_quality': quality, 'encode_ms': stats_ms(encode), 'decode_ms': stats_ms(decode),
            'raw_write_ms': stats_ms(write), 'raw_read_ms': stats_ms(read),
            'jpeg_kb': float(np.mean(sizes)) / 1024, 'raw_kb': frames[0].nbytes / 1024}


def print_compressed(case: Dict) -> None:
    c = case.get('compressed')
    if c is None:
        return
    print(f"  image_raw/compressed (JPEG quality {c['jpeg_quality']}): camera encode "
          f"{c['encode_ms']['p50']:.2f} ms, detector decode {c['decode_ms']['p50']:.2f} ms per "
          f"frame (p50); {c['jpeg_kb']:.0f} KB vs {c['raw_kb']:.0f} KB raw (raw message: build "
          f"{c['raw_write_ms']['p50']:.2f} ms, read {c['raw_read_ms']['p50']:.3f} ms)")


# ----- ROS variants ---------------------------------------------------------------------------

class Probe:
    """The bench's subscriber: tracks, detections and /diagnostics of one namespace, and on
    demand image_raw (its own cost would otherwise load the graph during the main window)."""

    def __init__(self, context, namespace: str) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from vision_msgs.msg import Detection2DArray

        from edge_tracker.conversions import raw_header, stamp_to_seconds
        from edge_tracker.qos import results_qos
        self._seconds = stamp_to_seconds
        self._header = raw_header
        self._type = Detection2DArray
        self.namespace = namespace
        self.node = rclpy.create_node('bench_probe', namespace='/' + namespace, context=context,
                                      start_parameter_services=False)
        self.lock = threading.Lock()
        self.tracks: List[tuple] = []        # (receive time, stamp)
        self.detection_stamps: Dict[float, float] = {}   # stamp -> receive time
        self.images: List[tuple] = []
        self.diagnostics: Dict[str, Dict[str, str]] = {}
        self.diagnostics_time: Dict[str, float] = {}
        # Raw: only the stamps are needed, and the observer should load the graph it
        # measures as little as it can.
        self.node.create_subscription(Detection2DArray, 'tracks', self._on_tracks,
                                      results_qos(), raw=True)
        self.node.create_subscription(Detection2DArray, 'detections', self._on_detections,
                                      results_qos(), raw=True)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      QoSProfile(depth=10,
                                                 reliability=ReliabilityPolicy.RELIABLE))
        self.image_sub = None

    def _stamp(self, data: bytes) -> float:
        return self._seconds(self._header(data, self._type).stamp)

    def _on_tracks(self, data: bytes) -> None:
        now = time.time()
        stamp = self._stamp(data)
        with self.lock:
            self.tracks.append((now, stamp))

    def _on_detections(self, data: bytes) -> None:
        now = time.time()
        stamp = self._stamp(data)
        with self.lock:
            self.detection_stamps[stamp] = now

    def _on_image(self, msg) -> None:
        now = time.time()
        with self.lock:
            self.images.append((now, self._seconds(msg.header.stamp)))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            name = status.name
            if name.startswith(self.namespace + '/'):
                node = name[len(self.namespace) + 1:].split(':', 1)[0]
                self.diagnostics[node] = {kv.key: kv.value for kv in status.values}
                self.diagnostics_time[node] = time.time()

    def watch_images(self, on: bool) -> None:
        from sensor_msgs.msg import Image

        from edge_tracker.qos import image_qos
        if on and self.image_sub is None:
            self.image_sub = self.node.create_subscription(Image, 'image_raw', self._on_image,
                                                           image_qos('best_effort', 1))
        elif not on and self.image_sub is not None:
            self.node.destroy_subscription(self.image_sub)
            self.image_sub = None

    def measured(self) -> List[tuple]:
        """Tracks of frames the detector ran on, measured: their detections had arrived (here)
        by the time the tracks did, give or take the order of two topics (a frame answered by
        prediction before its detections came is not counted)."""
        with self.lock:
            return [t for t in self.tracks if t[1] in self.detection_stamps
                    and self.detection_stamps[t[1]] <= t[0] + TOPIC_ORDER_SLACK_S]

    def diag(self, node: str, key: str) -> float:
        try:
            return max(0.0, float(self.diagnostics.get(node, {}).get(key, 'nan')))
        except ValueError:
            return float('nan')


class RosRunner:
    def __init__(self, domain_id: Optional[int], log_dir: str, warmup_s: float,
                 start_timeout_s: float, image_count: int = 40) -> None:
        self.domain = ros_environment(domain_id)
        self.log_dir = log_dir
        self.warmup_s = warmup_s
        self.start_timeout_s = start_timeout_s
        self.image_count = image_count   # images for the transport latency
        self.spinner = BackgroundSpinner(self.domain)
        self.children: List[Child] = []
        self.runs = 0

    def close(self) -> None:
        self.stop_children()
        self.spinner.close()

    def stop_children(self, timeout: float = 8.0) -> None:
        stop_all(self.children, timeout)
        self.children.clear()

    def _start(self, label: str, cmd: List[str]) -> None:
        log = os.path.join(self.log_dir, f'{label}-{time.monotonic_ns()}.log')
        self.children.append(Child(label, cmd, log))

    def run(self, variant: str, source: str, model: str, params_file: str, frames: int) -> Dict:
        """Starts the variant, waits for tracks, measures `frames` inferred frames."""
        self.runs += 1
        ns = f'bench_{os.getpid()}_{self.runs}'   # a fresh namespace: no stale messages
        probe = Probe(self.spinner.context, ns)
        self.spinner.executor.add_node(probe.node)
        common = ['--ros-args', '-r', f'__ns:=/{ns}', '--params-file', params_file,
                  '--log-level', 'warn']
        try:
            if variant.startswith('ros_nodes'):
                for label, name, extra in (('camera', 'camera_node', ['-p', f'source:={source}']),
                                           ('detector', 'detector_node',
                                            ['-p', f'model:={model}']),
                                           ('tracker', 'tracker_node', [])):
                    cmd = [executable(name)] + common[:1] + ['-r', f'__node:={label}'] + \
                        common[1:] + extra
                    self._start(label, cmd)
            else:
                cmd = [executable('pipeline'), 'profile:=pi', f'source:={source}',
                       f'model:={model}', f'params_file:={params_file}', f'namespace:={ns}',
                       'use_thermal:=false', 'log_level:=warn']
                self._start('pipeline', cmd)
            return self._measure(probe, frames)
        finally:
            self.stop_children()
            self.spinner.executor.remove_node(probe.node)
            probe.node.destroy_node()

    def _check_alive(self) -> None:
        for child in self.children:
            if not child.alive():
                raise RuntimeError(f'{child.label} exited with {child.popen.returncode}:\n'
                                   f'{child.log_tail()}')

    def _wait(self, predicate, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            self._check_alive()
            if time.monotonic() > end:
                logs = '\n'.join(f'--- {c.label}:\n{c.log_tail(1500)}' for c in self.children)
                raise RuntimeError(f'timed out after {timeout:.0f} s waiting for {what}\n{logs}')
            time.sleep(0.05)

    def _measure(self, probe: Probe, frames: int) -> Dict:
        self._wait(lambda: len(probe.measured()) >= 3, self.start_timeout_s, 'tracks')
        time.sleep(self.warmup_s)
        pids = {c.label: c.pid for c in self.children}
        pids['probe'] = os.getpid()   # the bench process: the subscriber's own cost
        # The camera's frame counter at both ends of the window: its own rate meter spans 2 s
        # and reads 0 below 1 fps, which a busy machine's latency run can reach.
        frames0 = (probe.diag('camera', 'frames'), probe.diagnostics_time.get('camera', 0.0))
        start = time.time()
        window = CpuWindow(pids, own='probe')
        first_report: Dict[str, str] = {}

        def enough() -> bool:
            # The detector's first report inside the window: the start of its CPU split.
            if not first_report and probe.diagnostics_time.get('detector', 0.0) > start:
                first_report.update(probe.diagnostics.get('detector', {}))
            # A short window (--quick) lasts until that report came: it is the split's start.
            return bool(first_report) and \
                len([t for t in probe.measured() if t[0] >= start]) >= frames

        # Generous: the detector may run far below the predict loop's rate.
        self._wait(enough, 30.0 + frames * 2.0, f'{frames} inferred frames')
        end = time.time()
        cpu = window.end()
        with probe.lock:
            all_tracks = [t for t in probe.tracks if start <= t[0] <= end]
        measured = [t for t in probe.measured() if start <= t[0] <= end]
        receive = np.array([t[0] for t in measured])
        latency = [t[0] - t[1] for t in measured]
        # The same frames split at the detections: stamp -> detections, detections -> tracks.
        with probe.lock:
            detections = [probe.detection_stamps[s] - s for _, s in measured]
            # Callback order between two topics is not arrival order: clamp the rare inversion.
            after = [max(0.0, r - probe.detection_stamps[s]) for r, s in measured]
        span = receive[-1] - receive[0] if len(receive) > 1 else 0.0
        # Image transport, measured apart so the main window did not carry this subscriber.
        probe.watch_images(True)
        self._wait(lambda: len(probe.images) >= 3, 20.0, 'images on image_raw')
        first = time.monotonic()
        self._wait(lambda: len(probe.images) >= self.image_count
                   or time.monotonic() - first > 2.0, 10.0, 'images on image_raw')
        probe.watch_images(False)
        with probe.lock:
            transport = [r - s for r, s in probe.images[2:]]   # skip the discovery burst
        # Node figures from a report sent after the window (nodes report once a second).
        self._wait(lambda: all(probe.diagnostics_time.get(n, 0.0) > end
                               for n in ('camera', 'detector', 'tracker')), 5.0, 'diagnostics')
        frames1 = (probe.diag('camera', 'frames'), probe.diagnostics_time.get('camera', 0.0))
        camera_rate = probe.diag('camera', 'output_rate_hz')
        if frames1[1] > frames0[1] > 0 and frames1[0] > frames0[0]:
            camera_rate = (frames1[0] - frames0[0]) / (frames1[1] - frames0[1])
        last_report = probe.diagnostics.get('detector', {})
        split = cpu_split(cpu['cpu_pct'], first_report, last_report, camera_rate)
        return {
            **split,
            'in_flight_per_frame': report_ratio(first_report, last_report,
                                                'announced_in_flight', 'received_frames'),
            'fps': (len(receive) - 1) / span if span > 0 else 0.0,
            'tracks_all_hz': len(all_tracks) / max(1e-6, end - start),
            'camera_hz': camera_rate,
            'e2e_ms': stats_ms(latency),
            'publish_ms': probe.diag('camera', 'publish_mean_ms'),
            'transport_ms': stats_ms(transport),
            'detect_ms': probe.diag('detector', 'inference_mean_ms'),
            'detections_ms': stats_ms(detections),
            'tracks_after_detections_ms': stats_ms(after),
            'dropped_frames': probe.diag('detector', 'dropped_frames'),
            'inferred_frames': probe.diag('detector', 'inferred_frames'),
            'tracking_ms': probe.diag('tracker', 'tracking_mean_ms'),
            'cpu_pct': cpu['cpu_pct'], 'rss_mb': cpu['rss_mb'],
            'machine_cpu_pct': cpu['machine_cpu_pct'], 'other_cpu_pct': cpu['other_cpu_pct'],
        }


def report_delta(first: Dict[str, str], last: Dict[str, str], key: str) -> float:
    """How much `key` grew between two diagnostics reports of one node (nan: not in both)."""
    try:
        return float(last[key]) - float(first[key])
    except (KeyError, ValueError):
        return float('nan')


def report_ratio(first: Dict[str, str], last: Dict[str, str], key: str, per: str) -> float:
    """How much `key` grew per unit of `per` between two diagnostics reports of one node."""
    base = report_delta(first, last, per)
    return report_delta(first, last, key) / base if base > 0 else float('nan')


def cpu_split(cpu_pct: Dict[str, float], first: Dict[str, str], last: Dict[str, str],
              camera_hz: float) -> Dict[str, object]:
    """CPU milliseconds per camera frame of each stage, and the glue (everything but inference)
    as a share of inference CPU. The detector reports its inference threads' CPU and its
    process CPU together, so their ratio between two reports splits its process CPU."""
    process = report_delta(first, last, 'process_cpu_s')
    share = min(1.0, max(0.0, report_delta(first, last, 'inference_cpu_s') / process)) \
        if process > 0 else 0.0
    per_frame = 10.0 / camera_hz if camera_hz > 0 else float('nan')   # % of a core -> ms
    graph = cpu_pct.get('pipeline', cpu_pct.get('detector', 0.0))
    inference = graph * share
    stages = {'inference': inference * per_frame}
    if 'pipeline' in cpu_pct:
        stages['glue_in_process'] = (graph - inference) * per_frame
    else:
        stages.update(camera=cpu_pct.get('camera', 0.0) * per_frame,
                      detector_outside_inference=(graph - inference) * per_frame,
                      tracker=cpu_pct.get('tracker', 0.0) * per_frame)
    glue = sum(v for k, v in stages.items() if k != 'inference')
    return {'cpu_ms_per_frame': stages, 'inference_cpu_share': share,
            'glue_share': glue / stages['inference'] if stages['inference'] > 0 else float('nan')}


def write_params(path: str, base: str, width: int, height: int, fps: float, source: str,
                 model: str, imgsz: int) -> Dict[str, Dict]:
    """A copy of the pi profile that does the same work as the loops: every frame inferred
    (frame_skip 1, no motion gate), our size, rate and input size, and the detector's default
    (automatic) workers and threads."""
    import yaml
    with open(base, encoding='utf-8') as f:
        doc = yaml.safe_load(f)
    sections = {str(k).rsplit('/', 1)[-1]: v['ros__parameters'] for k, v in doc.items()}
    sections['camera'].update(source=source, width=width, height=height, fps=float(fps),
                              loop=True)
    sections['detector'].update(model=model, imgsz=imgsz, workers=0, threads=0, device='cpu',
                                frame_skip=1, motion_gate=False)
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return sections


# ----- report ---------------------------------------------------------------------------------

VARIANTS = (('predict_1t', '(a1) predict 1t'), ('predict', '(a) predict'),
            ('predict_parallel', '(a2) parallel'), ('naive', '(b) naive loop'),
            ('ros_nodes', '(c) ROS nodes'), ('ros_nodes_30hz', '(c30) ROS 30 Hz'),
            ('pipeline', '(d) pipeline'), ('pipeline_30hz', '(d30) pipe 30 Hz'))
LOOPS = ('predict_1t', 'predict', 'predict_parallel', 'naive')
GRAPHS = ('ros_nodes', 'ros_nodes_30hz', 'pipeline', 'pipeline_30hz')
ROWS = VARIANTS


def _f(value, width: int = 7, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return '-'.rjust(width)
    return f'{value:{width}.{digits}f}'


def print_case(case: Dict) -> None:
    print(f"\n{case['name']}  ({case['width']}x{case['height']}, {case['frames']} frames; "
          f"capture = decode/render + resize {case['capture_ms']['mean']:.2f} ms)")
    head = ('variant', 'fps', 'lat p50', 'lat p95', 'capture', 'publish', 'transp', 'pre',
            'infer', 'post', 'detect', 'track', 'draw')
    print(f'  {head[0]:<16}' + ''.join(h.rjust(8) for h in head[1:]))
    for key, label in ROWS:
        r = case.get(key)
        if r is None:
            continue
        lat = r.get('latency_ms') or r.get('e2e_ms')
        ros = 'e2e_ms' in r
        capture = case['capture_ms']['mean'] if ros else r.get('capture_ms')
        row = [r['fps'], lat['p50'], lat['p95'], capture, r.get('publish_ms'),
               r['transport_ms']['p50'] if ros else None, r.get('preprocess_ms'),
               r.get('inference_ms'), r.get('postprocess_ms'), r.get('detect_ms'),
               r.get('tracking_ms'), r.get('drawing_ms')]
        print(f'  {label:<16}' + ''.join(' ' + _f(v, 7, 2 if i > 2 else 1)
                                         for i, v in enumerate(row)))
    for key, label in ROWS:
        r = case.get(key)
        if r is None or key not in GRAPHS:
            continue
        parts = [f"{k} {v:.0f}%" + (f" / {r['rss_mb'][k]:.0f} MB" if k in r['rss_mb'] else '')
                 for k, v in r['cpu_pct'].items()]
        print(f"  {label} CPU (100% = one core) / RSS: {', '.join(parts)}; "
              f"other processes {r['other_cpu_pct']:.0f}%; camera {r['camera_hz']:.0f} Hz, "
              f"tracks {r['tracks_all_hz']:.0f} Hz incl. predicted")
        stages = ', '.join(f'{k.replace("_", " ")} {v:.2f}'
                           for k, v in r['cpu_ms_per_frame'].items())
        print(f"      CPU ms per camera frame: {stages}; glue = "
              f"{100 * r['glue_share']:.0f}% of inference CPU")
    for key, label in ROWS:
        if key in case and key in LOOPS:
            print(f"  {label} CPU: {case[key]['cpu_pct']:.0f}% (bench process); other "
                  f"processes {case[key]['other_cpu_pct']:.0f}%")


def progress(case: Dict, key: str) -> None:
    r = case[key]
    lat = r.get('latency_ms') or r.get('e2e_ms')
    extra = f" (camera set to {r['camera_fps_set']:.0f} fps)" if 'e2e_ms' in r else ''
    print(f"  {dict(ROWS)[key]:<19} {r['fps']:6.1f} fps, latency p50 {lat['p50']:6.1f} ms"
          f"{extra}  [{time.monotonic() - STARTED:.0f} s]", flush=True)


def where_cpu_goes(r: Dict) -> str:
    stages = ', '.join(f'{k.replace("_", " ")} {v:.2f} ms' for k, v in
                       sorted(r['cpu_ms_per_frame'].items(), key=lambda kv: -kv[1]))
    return f"CPU per camera frame at {r['camera_hz']:.0f} Hz: {stages}"


def explain_throughput(case: Dict, key: str, base: str) -> str:
    r, a = case[key], case[base]
    cpu = ', '.join(f'{k} {v:.0f}%' for k, v in r['cpu_pct'].items())
    dropped = max(0.0, 1.0 - r['fps'] / r['camera_hz']) if r['camera_hz'] > 0 else 0.0
    idle = max(0.0, 100.0 * (os.cpu_count() or 1) - r['machine_cpu_pct'])
    # Idle CPU while inference is slower than alone: not starved, it runs below its threads.
    starved = 'the cores are shared' if idle < 25.0 else \
        f'yet {idle:.0f}% of the CPU stayed idle, so inference is not using its threads'
    return (f"detect in the node {r['detect_ms']:.1f} ms vs {a['detect_ms']:.1f} ms in "
            f"{dict(ROWS)[base]} (CPU {cpu}, other processes {r['other_cpu_pct']:.0f}%: "
            f"{starved}); {where_cpu_goes(r)}; {100 * dropped:.0f}% of the camera frames "
            f"dropped (newest frame wins), each still answered by predicted tracks")


def explain_latency(case: Dict, key: str) -> str:
    r, a = case[key], case['predict_1t']
    wait = max(0.0, r['detections_ms']['mean'] - r['detect_ms'] - r['transport_ms']['mean'])
    return (f"e2e mean {r['e2e_ms']['mean']:.1f} ms = image transport "
            f"{r['transport_ms']['mean']:.1f} + hand-over and publishing ~{wait:.1f} + detect "
            f"{r['detect_ms']:.1f} (1-thread loop {a['detect_ms']:.1f}) + detections -> tracks "
            f"received {r['tracks_after_detections_ms']['mean']:.1f}")


def _target(targets: List[Dict], target: str, variant: str, case: Dict, label: str,
            value: float, goal: str, met: bool, why) -> None:
    targets.append({'target': target, 'variant': variant, 'case': case['name'],
                    'label': f'{label}, {case["name"]}', 'value': value, 'goal': goal,
                    'met': bool(met), 'why': '' if met else why()})


def messaging_floor(c30: Dict, messaging: Optional[Dict]) -> str:
    """The glue that passing the graph's messages costs before any work is done on them."""
    if not messaging:
        return ''
    notices = c30.get('in_flight_per_frame', 0.0)
    if not math.isfinite(notices):
        notices = 0.0
    sent, taken = (n + notices for n in MESSAGES_PER_FRAME)
    floor = sent * messaging['talker_paced_ms'] + taken * messaging['listener_paced_ms']
    inference = c30['cpu_ms_per_frame']['inference']
    return (f"; the nodes publish {sent:.2g} and take {taken:.2g} messages per camera frame "
            f"({notices:.2f} in-flight notices), and here "
            f"{message_cost.describe(messaging)}: {floor:.2f} ms per frame, "
            f"{100 * floor / inference:.0f}% of inference CPU, before any work on them")


def evaluate(results: List[Dict], tracker: Dict,
             messaging: Optional[Dict] = None) -> List[Dict]:
    targets: List[Dict] = []
    for case in results:
        c, c30, d = case.get('ros_nodes'), case.get('ros_nodes_30hz'), case.get('pipeline')
        d30 = case.get('pipeline_30hz')
        a, a2 = case['predict'], case['predict_parallel']
        if c is not None:
            ratio = c['fps'] / a2['fps']
            _target(targets, 'parallel_ratio', 'ros_nodes', case, '(c) / (a2) fps', ratio,
                    f'>= {PARALLEL_RATIO_GOAL}', ratio >= PARALLEL_RATIO_GOAL,
                    lambda: explain_throughput(case, 'ros_nodes', 'predict_parallel'))
            ratio = c['fps'] / a['fps']
            _target(targets, 'sequential_ratio', 'ros_nodes', case, '(c) / (a) fps', ratio,
                    f'>= {SEQUENTIAL_RATIO_GOAL}', ratio >= SEQUENTIAL_RATIO_GOAL,
                    lambda: explain_throughput(case, 'ros_nodes', 'predict'))
        if c is not None and d is not None:
            ratio = d['fps'] / c['fps']
            _target(targets, 'pipeline_ratio', 'pipeline', case, '(d) / (c) fps', ratio,
                    '>= 1.0', ratio >= 1.0,
                    lambda: explain_throughput(case, 'pipeline', 'predict_parallel'))
        if c30 is not None:
            hz = max(1e-6, c30['camera_hz'])
            share = c30['fps'] / hz
            _target(targets, 'inferred_share_30hz', 'ros_nodes_30hz', case,
                    '(c30) inferred / camera frames', share, f'>= {INFERRED_SHARE_GOAL:.3f}',
                    share >= INFERRED_SHARE_GOAL,
                    lambda: explain_throughput(case, 'ros_nodes_30hz', 'predict_parallel'))
            share = c30['tracks_all_hz'] / hz
            _target(targets, 'tracks_share_30hz', 'ros_nodes_30hz', case,
                    '(c30) tracks / camera frames', share, f'>= {TRACKS_SHARE_GOAL}',
                    share >= TRACKS_SHARE_GOAL, lambda: where_cpu_goes(c30))
            extra = c30['e2e_ms']['p50'] - case['predict_1t']['latency_ms']['p50']
            _target(targets, 'latency_extra_ms', 'ros_nodes_30hz', case,
                    '(c30) e2e p50 - (a1) p50', extra, f'<= {LATENCY_EXTRA_GOAL_MS} ms',
                    extra <= LATENCY_EXTRA_GOAL_MS,
                    lambda: explain_latency(case, 'ros_nodes_30hz'))
            glue = c30['glue_share']
            _target(targets, 'glue_share', 'ros_nodes_30hz', case,
                    '(c30) glue CPU / inference CPU', glue, f'<= {GLUE_SHARE_GOAL}',
                    glue <= GLUE_SHARE_GOAL,
                    lambda: where_cpu_goes(c30) + messaging_floor(c30, messaging))
        if d30 is not None:
            # The same work in one process: what the three processes' messages cost beside it.
            glue = d30['glue_share']
            _target(targets, 'glue_share', 'pipeline_30hz', case,
                    '(d30) glue CPU / inference CPU', glue, f'<= {GLUE_SHARE_GOAL}',
                    glue <= GLUE_SHARE_GOAL, lambda: where_cpu_goes(d30))
    t50 = tracker['50']
    met = bool(t50['update_ms'] <= TRACKING_GOAL_MS)
    targets.append({'target': 'tracking_ms_50', 'variant': 'tracker', 'case': '50 boxes',
                    'label': 'Tracker.update at 50 boxes (p50)', 'value': t50['update_ms'],
                    'goal': f'<= {TRACKING_GOAL_MS} ms', 'met': met,
                    'why': '' if met else (
                        f"edge_tracker's batched ByteTrack took {t50['update_mean_ms']:.2f} ms "
                        f"(mean); trackers' ByteTrackTracker on the same boxes "
                        f"{t50['bytetrack_mean_ms']:.2f} ms: look for another process on the "
                        "CPU")})
    return targets


def print_report(report: Dict) -> None:
    s = report['settings']
    print(f"\nbench {report['date']}  {report['machine']['cpu_model']}, "
          f"{report['machine']['cores']} cores")
    print(f"model {s['model']} (backend {s['backend']}), imgsz {s['imgsz']}; (a) "
          f"{s['threads']} torch threads, (a2) {s['workers']} workers x 1 thread, (c)/(d) the "
          "detector's automatic workers and threads; times in ms, fps = inferred frames per "
          "second; lat = per frame for the loops, image stamp -> tracks received for (c)/(d); "
          "(c)/(d) detect = the node's whole Detector.detect, drawing only on demand (none)")
    for case in report['results']:
        print_case(case)
        print_compressed(case)
    print("\nTracker.update per frame (p50 / p95 ms; roboflow trackers' ByteTrackTracker on the "
          "same boxes, p50, for reference):")
    for n, t in report['tracker'].items():
        print(f"  {n:>4} boxes: {t['update_ms']:.3f} / {t['update_p95_ms']:.3f}"
              f"  (trackers {t['bytetrack_ms']:.3f}, {t['tracked_per_frame']:.0f} tracked)")
    busy = [(c['name'], label, c[key]['other_cpu_pct']) for c in report['results']
            for key, label in ROWS if key in c and c[key]['other_cpu_pct'] > BUSY_PCT]
    if busy:
        print(f'\nWARNING: other processes used the CPU during {len(busy)} measurement(s) '
              f'(up to {max(b[2] for b in busy):.0f}% of a core, {busy[0][1]} on '
              f'{busy[0][0]} first): those figures are not representative; rerun on an idle '
              'machine.')
    print('\nTargets:')
    for t in report['targets']:
        print(f"  {t['label']:<58} {t['value']:8.3f}  {t['goal']:<10} "
              f"{'MET' if t['met'] else 'MISSED'}")
        if t['why']:
            print(f"      where: {t['why']}")


# ----- main -----------------------------------------------------------------------------------

def resolve_model(model: str) -> str:
    if model:
        return os.path.abspath(model) if os.path.exists(model) else model
    return default_model()


def _plain(value):
    """numpy scalars (and anything else odd) as JSON values."""
    return value.item() if hasattr(value, 'item') else str(value)


def parse_size(text: str):
    w, _, h = text.lower().partition('x')
    return int(w), int(h)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--frames', type=int, default=None,
                        help='frames measured per variant (default 150, --quick 12: the whole '
                             'run fits in under 10 minutes on 2 cores)')
    parser.add_argument('--quick', action='store_true',
                        help='a few frames of the video at 640x480 only (for the tests)')
    parser.add_argument('--skip-ros', action='store_true', help='only (a), (b) and the tracker')
    parser.add_argument('--model', default='', help=f'model (default: the project\'s '
                        f'{PROJECT_MODEL} if installed, else {FALLBACK_MODEL}); .pt, .onnx, '
                        '_openvino_model/ ...')
    parser.add_argument('--imgsz', type=int, default=320)
    parser.add_argument('--threads', type=int, default=0,
                        help='torch threads of the sequential loop (a) (default: every core)')
    parser.add_argument('--workers', type=int, default=0,
                        help='models of the parallel loop (a2), one torch thread each (default: '
                             'one per core)')
    parser.add_argument('--sizes', default='', help='e.g. 640x480,1280x720 (default both)')
    parser.add_argument('--inputs', default='', help='video,synthetic (default both)')
    parser.add_argument('--camera-factor', type=float, default=1.2,
                        help='camera rate of (c)/(d) as a multiple of the parallel loop (a2)\'s '
                             'rate (default 1.2). The graph cannot infer faster than the bare '
                             'loops on the same cores, so anything above 1 saturates it; more '
                             'only adds frames that are published, transported and dropped')
    parser.add_argument('--camera-fps', type=float, default=0.0,
                        help='a fixed camera rate for (c)/(d) instead (for sweeps)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID (default 1 + pid %% 100)')
    parser.add_argument('--json', default='out/bench/bench.json', help='where the figures go')
    args = parser.parse_args(argv)

    global STARTED
    STARTED = time.monotonic()
    cores = os.cpu_count() or 1
    args.threads = args.threads or cores
    args.workers = args.workers or cores
    frames = max(2, args.frames or (12 if args.quick else 150))
    sizes = [parse_size(s) for s in args.sizes.split(',') if s] or \
        ([SIZES[0]] if args.quick else list(SIZES))
    # --quick: one ROS start-up pair costs ~10 s, so one input (the video: the camera's file
    # path) keeps it well under a minute.
    inputs = [i.strip() for i in args.inputs.split(',') if i.strip()] or \
        (['video'] if args.quick else list(INPUTS))
    unknown = set(inputs) - set(INPUTS)
    if unknown:
        parser.error(f'unknown input(s) {", ".join(sorted(unknown))}; choose from video, synthetic')
    if 'video' in inputs:
        video_path()   # fail before minutes of work
    warmup = 3 if args.quick else 10

    # Before torch and Ultralytics load: their thread pools read it once.
    os.environ.setdefault('OMP_NUM_THREADS', str(args.threads))
    os.environ.setdefault('YOLO_OFFLINE', '1')
    os.environ.setdefault('YOLO_VERBOSE', 'False')

    from ultralytics import YOLO

    from edge_tracker.core.detector import Detector
    from edge_tracker.core.launch_plan import profile_file, read_profile
    from edge_tracker.paths import share_directory

    model = resolve_model(args.model)
    tmp = tempfile.TemporaryDirectory(prefix='edge_tracker_bench_')
    base_yaml = profile_file(share_directory(), 'pi')
    # The detector and tracker settings every variant shares (write_params keeps them).
    params = read_profile(base_yaml)
    det_p, trk_p = params['detector'], params['tracker']
    tracker_options = {k: trk_p[k] for k in (
        'track_activation_threshold', 'high_conf_det_threshold', 'minimum_iou_threshold',
        'lost_track_buffer', 'minimum_consecutive_frames', 'frame_rate')}
    predict_kwargs = dict(imgsz=args.imgsz, device='cpu', conf=det_p['conf'], iou=det_p['iou'],
                          max_det=det_p['max_det'], verbose=False)
    print(f'bench: model {model}, imgsz {args.imgsz}, {args.threads} threads, {frames} frames, '
          f'sizes {", ".join(f"{w}x{h}" for w, h in sizes)}, inputs {", ".join(inputs)}',
          flush=True)
    detector = Detector(model, device='cpu', imgsz=args.imgsz, conf=det_p['conf'],
                        iou=det_p['iou'], max_det=det_p['max_det'], threads=args.threads,
                        log=lambda m: print(m, flush=True))
    yolo = YOLO(detector.model_path, task='detect')

    ros = None
    messaging: Optional[Dict] = None
    results: List[Dict] = []

    def on_term(signum, frame):   # cleanup runs in the finally blocks
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        if not args.skip_ros:
            ros = RosRunner(args.domain_id, tmp.name, warmup_s=0.5 if args.quick else 2.0,
                            start_timeout_s=120.0, image_count=15 if args.quick else 40)
            messaging = message_cost.measure(CAMERA_HZ, 3.0 if args.quick else 8.0, ros.domain)
            print(f'\n{message_cost.describe(messaging)}', flush=True)
        for kind in inputs:
            for width, height in sizes:
                name = f"{VIDEO_NAME if kind == 'video' else 'synthetic'} {width}x{height}"
                print(f'\n== {name}', flush=True)
                decoded, capture = decode_frames(kind, width, height, frames)
                case = {'name': name, 'input': kind, 'width': width, 'height': height,
                        'frames': frames, 'capture_ms': stats_ms(capture)}
                case['predict_1t'] = bench_predict(yolo, decoded, predict_kwargs, 1, warmup)
                progress(case, 'predict_1t')
                case['predict'] = bench_predict(yolo, decoded, predict_kwargs, args.threads,
                                                warmup)
                progress(case, 'predict')
                case['predict_parallel'] = bench_parallel(detector.model_path, decoded,
                                                          predict_kwargs, args.workers, warmup)
                progress(case, 'predict_parallel')
                case['compressed'] = bench_compressed(decoded)
                del decoded
                case['naive'] = bench_naive(detector, kind, width, height, frames,
                                            tracker_options, int(trk_p['trail_length']),
                                            args.threads, warmup)
                progress(case, 'naive')
                if ros is not None:
                    fast = args.camera_fps or args.camera_factor * case['predict_parallel']['fps']
                    for key, camera_fps in (('ros_nodes', fast), ('ros_nodes_30hz', CAMERA_HZ),
                                            ('pipeline', fast), ('pipeline_30hz', CAMERA_HZ)):
                        camera_fps = min(1000.0, camera_fps)
                        yaml_path = os.path.join(tmp.name, f'{kind}_{width}x{height}_{key}.yaml')
                        write_params(yaml_path, base_yaml, width, height, camera_fps,
                                     source_text(kind), model, args.imgsz)
                        case[key] = ros.run(key, source_text(kind), model, yaml_path, frames)
                        case[key]['camera_fps_set'] = camera_fps
                        progress(case, key)
                results.append(case)
        print('\nTracker.update micro-benchmark ...', flush=True)
        tracker_frames = 40 if args.quick else 300
        tracker = bench_tracker(TRACKER_BOXES, tracker_frames, tracker_options)
    except KeyboardInterrupt:
        print('\nbench: interrupted; the started processes are stopped', file=sys.stderr)
        return 130
    except RuntimeError as exc:   # a node died or never delivered: its log says why
        print(f'\nbench: {exc}', file=sys.stderr)
        return 1
    finally:
        if ros is not None:
            ros.close()
        signal.signal(signal.SIGTERM, previous)
        tmp.cleanup()

    report = {
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'machine': machine_info(),
        'versions': versions(ros=not args.skip_ros),
        'settings': {'model': model, 'backend': detector.backend, 'imgsz': args.imgsz,
                     'threads': args.threads, 'workers': args.workers, 'device': 'cpu',
                     'frames': frames,
                     'warmup_frames': warmup, 'quick': args.quick, 'skip_ros': args.skip_ros,
                     'sizes': [f'{w}x{h}' for w, h in sizes], 'inputs': inputs,
                     'video': str(VIDEO_DIR / VIDEO_NAME), 'synthetic_seed': 0,
                     'camera_factor': args.camera_factor, 'camera_fps': args.camera_fps,
                     'profile': 'pi',
                     'profile_changes': {'detector.frame_skip': 1, 'detector.motion_gate': False,
                                         'detector.workers': 0, 'detector.threads': 0},
                     'detector': {k: det_p[k] for k in ('conf', 'iou', 'max_det')},
                     'tracker': tracker_options, 'tracker_benchmark_frames': tracker_frames,
                     'ros_domain_id': ros.domain if ros is not None else None},
        'results': results,
        'tracker': tracker,
        'messaging': messaging,
    }
    report['targets'] = evaluate(results, tracker, messaging)
    report['run_time_s'] = time.monotonic() - STARTED
    print_report(report)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=_plain) + '\n')
    print(f"\nwrote {out} ({report['run_time_s']:.0f} s)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
