"""camera_node: publishes image_raw (bgr8) and camera_info from a device, file, stream, GStreamer
pipeline or the synthetic scene; and image_raw/compressed (JPEG), encoded only while someone
subscribes to it."""

import threading
import time

import cv2
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from edge_tracker.conversions import (CompressedWriter, ImageWriter, camera_info_msg, stamp_key,
                                      transport_topic)
from edge_tracker.core import stats
from edge_tracker.core.calibration import CalibrationError, load_calibration, url_to_path
from edge_tracker.core.errors import ConfigurationError
from edge_tracker.core.pacing import AnswerPacer
from edge_tracker.core.sources import CaptureLoop, SourceError, parse_source, redact
from edge_tracker.diagnostics import Diagnostics
from edge_tracker.node_main import main_for, steady_timer
from edge_tracker.params import P, declare
from edge_tracker.qos import RELIABILITY_CHOICES, image_qos, results_qos


def _check_source(text):
    try:
        parse_source(text)
    except SourceError as exc:
        return str(exc)
    return None


PARAMS = [
    P('source', 'synthetic', 'device index, /dev/videoN, video file, rtsp:// or http:// URL, '
      'GStreamer pipeline (ending in appsink) or synthetic[:SEED]', check=_check_source,
      read_only=True),
    P('width', 0, 'published width in pixels (0: the source\'s own)', min=0, max=8192),
    P('height', 0, 'published height in pixels (0: the source\'s own)', min=0, max=8192),
    P('fps', 0.0, 'frame rate; 0 plays files at their own rate and takes live sources as they '
      'come', min=0.0, max=1000.0),
    P('loop', True, 'restart a video file at its end (false: stop the node at the end)'),
    P('decode_threads', 1, 'FFmpeg decoder threads for files and streams (0: one per core; '
      'one costs the least CPU per frame, raise it when a large stream cannot keep its rate)',
      min=0, max=64, read_only=True),
    P('frame_id', 'camera', 'frame_id of the published headers'),
    P('camera_info_url', '', 'calibration YAML (file:///path, package://pkg/path or a path); '
      'empty publishes an uncalibrated CameraInfo of the image size', read_only=True),
    P('reliability', 'best_effort', 'QoS reliability of image_raw and camera_info',
      choices=RELIABILITY_CHOICES, read_only=True),
    P('depth', 1, 'QoS history depth of image_raw and camera_info', min=1, max=100,
      read_only=True),
    P('paced', False, 'lossless replay: publish a frame only once `tracks` has answered the '
      'previous one, and stamp frames 1/fps apart from the first (the sequence\'s clock, not '
      'the wall clock), so evaluation results do not depend on the machine\'s load',
      read_only=True),
    P('pace_timeout_s', 30.0, 'with paced: longest wait for an answer before the next frame '
      'goes out anyway (counted in /diagnostics)', min=0.1, max=3600.0, read_only=True),
    P('jpeg_quality', 80, 'JPEG quality of image_raw/compressed (1-100; higher: larger '
      'frames, fewer artefacts)', min=1, max=100),
    P('wait_for_subscribers', 0, 'start capturing only once image_raw and camera_info each '
      'have this many subscribers (recordings and evaluations that must not miss frame 0)',
      min=0, max=100, read_only=True),
]
# Size and rate are read when the source is (re)opened.
_RESTART_TO_APPLY = ('width', 'height', 'fps', 'loop')


class CameraNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__('camera', **node_kwargs)
        self.params = declare(self, PARAMS, on_change=self._on_change)
        p = self.params
        self.calibration = None
        if p.camera_info_url:
            try:
                from ament_index_python.packages import get_package_share_directory
                self.calibration = load_calibration(
                    url_to_path(p.camera_info_url, get_package_share_directory))
            except (CalibrationError, LookupError) as exc:
                raise ConfigurationError(f'camera_info_url: {exc}') from exc
        # OpenCV's own thread pool splits each resize (and colour conversion) across the cores:
        # no faster per frame here, and ~20 % more camera CPU taken from inference (measured
        # at 30 Hz, 768x432 -> 640x480). Process-wide, so the pipeline's detector too.
        cv2.setNumThreads(1)
        qos = image_qos(p.reliability, p.depth)
        self.image_pub = self.create_publisher(Image, 'image_raw', qos)
        self.info_pub = self.create_publisher(CameraInfo, 'camera_info', qos)
        # image_transport's naming, so compressed subscribers (rqt, a remote detector) find it.
        self.compressed_pub = self.create_publisher(
            CompressedImage, transport_topic(self, 'image_raw', 'compressed'), qos)
        self.writer = ImageWriter()
        # Nodes of this process that take frames directly (the pipeline's detector); image_raw
        # then goes out only while something else subscribes to it.
        self.local_sinks = ()
        self.compressed_writer = CompressedWriter()
        self.encode_time = stats.DurationStats()
        self.compressed_frames = 0
        self.rate = stats.RateMeter()
        self.publish_time = stats.DurationStats()
        self.status = (stats.WARN, 'starting')
        self._info = None
        self._ended = threading.Event()
        self.spec = parse_source(p.source)
        self.pacer = None
        self._paced_t0 = None
        if p.paced:
            self.pacer = AnswerPacer(p.pace_timeout_s)
            self.create_subscription(Detection2DArray, 'tracks',
                                     lambda m: self.pacer.answered(stamp_key(m.header.stamp)),
                                     results_qos())
        self.loop = CaptureLoop(self.spec, on_frame=self._on_frame, on_status=self._on_status,
                                on_end=self._on_end, width=p.width, height=p.height, fps=p.fps,
                                loop=p.loop, decode_threads=p.decode_threads,
                                frame_buffer=self.writer.frame_buffer)
        self.diagnostics = Diagnostics(self)
        self.diagnostics.add('capture', self._diagnose)
        self.get_logger().info(f'camera source: {self.spec.kind} {self.spec.display}')
        if p.wait_for_subscribers > 0:
            self._ready_since = None
            self._start_timer = steady_timer(self, 0.1, self._start_when_subscribed)
        else:
            self.loop.start()

    def _start_when_subscribed(self) -> None:
        n = self.params.wait_for_subscribers
        if min(self.image_pub.get_subscription_count() + len(self.local_sinks),
               self.info_pub.get_subscription_count()) < n:
            self._ready_since = None
            return
        now = time.monotonic()
        if self._ready_since is None:
            self._ready_since = now
        if now - self._ready_since >= 0.5:  # let the other side finish matching too
            self._start_timer.cancel()
            self.get_logger().info(f'{n} subscribers present; capturing')
            self.loop.start()

    def _on_change(self, changes):
        restart = [k for k in changes if k in _RESTART_TO_APPLY]
        if restart:
            self.get_logger().info(f'{", ".join(restart)} take effect when the source reopens')
        return None

    def _on_frame(self, frame) -> None:
        try:
            self._publish(frame)
        except Exception:
            if self.context.ok():
                raise
            # Shutting down: the context (and the publishers) went away under this thread.

    def _publish(self, frame) -> None:
        if self.pacer is not None and not self.pacer.wait():
            if not self.context.ok():
                return
            self.get_logger().warning(f'no tracks for the previous frame within '
                                      f'{self.pacer.timeout_s:g} s; sending the next one',
                                      throttle_duration_sec=5.0)
        t0 = time.perf_counter()
        now = self.get_clock().now()  # ROS time: /clock under use_sim_time
        stamp = now.to_msg() if self.pacer is None else self._sequence_stamp(now)
        if stamp.sec == 0 and stamp.nanosec == 0:
            self.get_logger().warning('use_sim_time is set but no /clock arrives: frames are '
                                      'stamped 0 (start the simulator or ros2 bag play --clock)',
                                      throttle_duration_sec=5.0)
        # A header of its own per frame: the in-process detector keeps it past this call.
        header = Header(stamp=stamp, frame_id=self.params.frame_id)
        if self.pacer is not None:
            self.pacer.sent(stamp_key(stamp))
        for sink in self.local_sinks:
            sink(header, frame)
        if not self.local_sinks or self.image_pub.get_subscription_count() > 0:
            self.image_pub.publish(self.writer.write(frame, header))
        # Encoding costs ~1 ms per 640x480 frame: only for someone who asked for it.
        if self.compressed_pub.get_subscription_count() > 0:
            e0 = time.perf_counter()
            self.compressed_pub.publish(self.compressed_writer.write(
                frame, header, self.params.jpeg_quality))
            self.encode_time.add(time.perf_counter() - e0)
            self.compressed_frames += 1
        h, w = frame.shape[:2]
        if self._info is None or (self._info.width, self._info.height) != (w, h):
            self._info = camera_info_msg(w, h, header, self.calibration)
        self._info.header = header
        self.info_pub.publish(self._info)
        self.rate.tick()
        self.publish_time.add(time.perf_counter() - t0)

    def _sequence_stamp(self, now):
        """Frame n of a paced replay is stamped first + n / fps: the tracker's motion model
        then sees the sequence's own time steps, however long each frame took to answer."""
        if self._paced_t0 is None:
            self._paced_t0 = now.nanoseconds
        step_ns = int(round(1e9 / max(self.loop.fps, 1e-3)))
        total = self._paced_t0 + (self.loop.frames - 1) * step_ns
        msg = now.to_msg()
        msg.sec, msg.nanosec = divmod(total, 1_000_000_000)
        return msg

    _LEVELS = {'ok': stats.OK, 'warn': stats.WARN, 'error': stats.ERROR}

    def _on_status(self, level: str, message: str) -> None:
        message = redact(message)
        self.status = (self._LEVELS[level], message)
        # rclpy wants one severity per call site, hence one call per level.
        if level == 'ok':
            self.get_logger().info(message)
        elif level == 'warn':
            self.get_logger().warning(message, throttle_duration_sec=5.0)
        else:
            self.get_logger().error(message, throttle_duration_sec=5.0)

    def _on_end(self) -> None:
        self.get_logger().info(f'end of {self.spec.display} after {self.loop.frames} frames '
                               '(loop is false); stopping')
        self._ended.set()
        # Ending the process like a finished launch action: shut the context down.
        self.context.try_shutdown()

    def _diagnose(self):
        level, message = self.status
        if self.loop.state == 'streaming':
            level, message = stats.OK, f'streaming {self.spec.kind}'
        return level, message, {
            'source': self.spec.display, 'state': self.loop.state,
            'output_rate_hz': self.rate.rate(), 'frames': self.loop.frames,
            'reconnects': self.loop.reconnects, 'nominal_fps': self.loop.fps,
            'publish_mean_ms': self.publish_time.summary_ms()['mean_ms'],
            'publish_p95_ms': self.publish_time.summary_ms()['p95_ms'],
            'pace_timeouts': self.pacer.timeouts if self.pacer else 0,
            'compressed_frames': self.compressed_frames,
            'jpeg_encode_mean_ms': self.encode_time.summary_ms()['mean_ms'],
        }

    def close(self) -> None:
        # A frame takes far less; a stream open or read can block for its whole timeout
        # (5 s), and the capture thread is a daemon that must not hold the exit up.
        if self.pacer is not None:
            self.pacer.close()
        self.loop.stop(timeout=0.5)


main = main_for(CameraNode)
