"""tracker_node: detections -> ByteTrack -> tracks (Detection2D.id = track id), and, only while
someone subscribes, annotated_image drawn on the camera image with the same stamp.

With predict_skipped, every camera frame gets a tracks message, in stamp order, measured when
the detector ran on it, otherwise the tracks' predicted boxes (their Detection2D.header is then
the older header of the frame they were last measured in). Every frame the detector receives
gets its detections or a notice on detections/skipped, and one it is still inferring when a
newer frame's go out is announced first on detections/in_flight, so results that finish out of
order are waited for, skipped and dropped frames are not, and a source without camera_info
still gets measured tracks. These messages are the frame clock while a detector makes them
(frame_clock auto); camera_info is the clock otherwise (a detector that announces nothing, or
none running: the tracks go on, predicted, at the camera's rate).

The detector's cascade refinements (detections/refined) are applied to the next frame tracked
with measurements (core/cascade.PendingRefinement): in place of the quick boxes when that is
the refined frame itself, merged into a later frame's boxes within refined_max_age_s.
"""

import time
from collections import OrderedDict, deque

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from edge_tracker.conversions import (TRANSPORTS, ImageError, ImageWriter, detections_to_msg,
                                      image_transport, msg_to_detections, raw_header,
                                      stamp_key, stamp_to_seconds)
from edge_tracker.core import stats
from edge_tracker.core.annotate import Annotator
from edge_tracker.core.cascade import CARRIED, EXPIRED, SAME_FRAME, PendingRefinement
from edge_tracker.core.sequencer import MEASURED, FrameSequencer
from edge_tracker.core.tracking import TRACKER_DEFAULTS, Tracker
from edge_tracker.diagnostics import Diagnostics
from edge_tracker.node_main import main_for, steady_timer
from edge_tracker.params import P, declare
from edge_tracker.qos import RELIABILITY_CHOICES, image_qos, notice_qos, results_qos

FRAME_CLOCKS = ('auto', 'detector', 'camera_info')
# How often frame_clock auto looks at the graph for a detector's announcements.
_GRAPH_PERIOD_S = 0.2
# Announcements missing this long (or max_wait_s, if longer) mean the detector is gone even
# while the graph still lists it: a killed process stays listed until its DDS lease expires
# (~20 s with Fast DDS defaults), and the tracks must not stop for that long.
_ANNOUNCEMENTS_STALE_S = 2.0

TRACKER_OPTIONS = ('track_activation_threshold', 'high_conf_det_threshold',
                   'minimum_iou_threshold', 'lost_track_buffer', 'minimum_consecutive_frames',
                   'frame_rate', 'class_aware')

PARAMS = [
    P('track_activation_threshold', TRACKER_DEFAULTS['track_activation_threshold'],
      'minimum score that starts a track (above the detector\'s conf, so low-score boxes only '
      'extend tracks)', min=0.0, max=1.0),
    P('high_conf_det_threshold', TRACKER_DEFAULTS['high_conf_det_threshold'], 'score from '
      'which boxes take part in the first association', min=0.0, max=1.0),
    P('minimum_iou_threshold', TRACKER_DEFAULTS['minimum_iou_threshold'], 'overlap needed to '
      'match a box to a track', min=0.0, max=1.0),
    P('lost_track_buffer', TRACKER_DEFAULTS['lost_track_buffer'], 'how long a missed track '
      'may still continue, in frames at 30 fps: lost_track_buffer x frame_rate / 30 '
      'consecutive inferred frames (lost_track_buffer / 30 s when every frame is inferred); '
      'frames the detector skipped (frame_skip, motion gate, thermal pause, busy) do not count',
      min=0, max=100000),
    P('minimum_consecutive_frames', TRACKER_DEFAULTS['minimum_consecutive_frames'],
      'matches before a track gets an id', min=1, max=1000),
    P('frame_rate', TRACKER_DEFAULTS['frame_rate'], 'nominal camera rate (the first step, the '
      'noise per frame, and how many inferred frames lost_track_buffer counts)',
      min=0.1, max=1000.0),
    P('class_aware', TRACKER_DEFAULTS['class_aware'], 'a box only continues a track of its '
      'own class (tracks break where the detector\'s class flickers, e.g. car/truck); false: '
      'a box of another class counts with 0.3 of its overlap, so crossing objects of two '
      'classes keep their ids and a clear overlap still continues a flickering track'),
    P('predict_skipped', True, 'publish predicted tracks for camera frames the detector skipped '
      '(frame_skip, motion gate, throttling, busy), on the frame clock frame_clock chooses',
      read_only=True),
    P('frame_clock', 'auto', 'which messages define the camera frames to answer: auto '
      '(the detector\'s frame announcements while it makes them, camera_info otherwise), '
      'detector, or camera_info (also when the detector announces; one more message per frame)',
      choices=FRAME_CLOCKS, read_only=True),
    P('max_wait_s', 0.5, 'longest a frame waits for its detections before its tracks are '
      'predicted (the wait adapts below it to twice the detector latency)', min=0.01, max=10.0,
      read_only=True),
    P('adaptive_wait', True, 'shorten the wait to twice the detector\'s recent latency (false: '
      'every frame waits up to max_wait_s for its detections, as a lossless replay needs)',
      read_only=True),
    P('refined_max_age_s', 0.05, 'the detector\'s cascade refinement (detections/refined) of a '
      'frame is merged into the measured frames up to this much later (stamp time; 0: only '
      'into its own frame, when that still waits for its detections)',
      min=0.0, max=10.0, read_only=True),
    P('annotate', True, 'publish annotated_image while it has subscribers'),
    P('trail_length', 30, 'positions per trail on annotated_image (0: no trails)',
      min=0, max=10000, read_only=True),
    P('image_cache', 30, 'camera images kept to match detections by stamp for annotation',
      min=1, max=1000, read_only=True),
    P('reliability', 'best_effort', 'QoS reliability of the image_raw subscription and of '
      'annotated_image', choices=RELIABILITY_CHOICES, read_only=True),
    P('transport', 'raw', 'transport of the camera images drawn on: raw (image_raw) or '
      'compressed (image_raw/compressed, decoded only for frames that get drawn)',
      choices=TRANSPORTS, read_only=True),
]


class TrackerNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__('tracker', **node_kwargs)
        self.params = declare(self, PARAMS, on_change=self._on_change)
        p = self.params
        self.tracker = Tracker(**{k: p[k] for k in TRACKER_OPTIONS})
        self.class_index = {}
        self.tracks_pub = self.create_publisher(Detection2DArray, 'tracks', results_qos())
        self.annotated_pub = self.create_publisher(Image, 'annotated_image',
                                                   image_qos(p.reliability, 1))
        self.results_subs = []
        self.local_results = None   # detector results handed over in this process (pipeline)
        self.refinement = PendingRefinement(p.refined_max_age_s)
        self.create_subscription(Detection2DArray, 'detections/refined', self._on_refined,
                                 results_qos())
        self.sequencer = FrameSequencer(
            min_wait_s=0.05 if p.adaptive_wait else p.max_wait_s, max_wait_s=p.max_wait_s,
            rewind_s=self.tracker.rewind_s)
        self.frame_headers = OrderedDict()  # stamp -> camera header, for predicted frames
        self.deadline_timer = None
        self.measured_header = None
        self.info_sub = None
        self._in_flight_topic = self.resolve_topic_name('detections/in_flight')
        self._announced_at = None   # steady time of the detector's last frame announcement
        if p.predict_skipped:
            # Raw: a frame's notices are read from the bytes (one fewer message built). Created
            # before the detections subscription, and in_flight first: the detector sends an
            # in-flight notice right before the newer frame's skip notice or detections, and a
            # wait-set executor (Humble, Jazzy) takes messages that are ready together in the
            # order the subscriptions were made.
            self.results_subs += [
                self.create_subscription(Header, 'detections/in_flight', self._on_in_flight,
                                         notice_qos(), raw=True),
                self.create_subscription(Header, 'detections/skipped', self._on_skipped,
                                         notice_qos(), raw=True)]
            # Only a frame that may time out needs the clock: the timer is armed for the oldest
            # waiting frame's deadline and cancelled while none waits (no polling).
            self.deadline_timer = steady_timer(self, 1.0, self._on_deadline)
            self.deadline_timer.cancel()
        self._armed_for = None  # the deadline the timer is armed for (None: cancelled)
        self.results_subs.append(self.create_subscription(
            Detection2DArray, 'detections', self._on_detections, results_qos()))
        self.annotator = Annotator(p.trail_length)
        self.writer = ImageWriter()
        self.image_sub = None
        self._image_type, self._image_topic, self._to_bgr = image_transport(
            self, 'image_raw', p.transport)
        self.images = OrderedDict()    # stamp -> Image, newest last
        self.pending = OrderedDict()   # stamp -> tracks waiting for their image
        self.input_rate = stats.RateMeter()
        self.output_rate = stats.RateMeter()
        self.predicted_rate = stats.RateMeter()
        self.annotated_rate = stats.RateMeter()
        self.track_time = stats.DurationStats()
        self.draw_time = stats.DurationStats()
        self.out_of_order = 0
        self.measured_frames = 0
        self.predicted_frames = 0
        self.late_detections = 0
        self._follow_graph()
        steady_timer(self, _GRAPH_PERIOD_S, self._follow_graph)
        self.resets = 0
        self.create_service(Trigger, '~/reset', self._on_reset)
        self.diagnostics = Diagnostics(self)
        self.diagnostics.add('tracking', self._diagnose)

    def _on_change(self, changes):
        options = {k: v for k, v in changes.items() if k in TRACKER_OPTIONS}
        if options:
            self.tracker.reconfigure(**options)
            self.sequencer.rewind_s = self.tracker.rewind_s
        return None

    def _on_reset(self, request, response):
        """~/reset: forget every track; ids start at 0 again (a new scene, a replay restart)."""
        forgotten = self.tracker.live_tracks
        self.tracker.reset()
        self.annotator.reset()
        self.measured_header = None
        self.pending.clear()
        self.resets += 1
        self.get_logger().info(f'reset: forgot {forgotten} tracks; ids start at 0')
        response.success = True
        response.message = f'forgot {forgotten} tracks'
        return response

    def _follow_graph(self) -> None:
        self._follow_frame_clock()
        self._follow_annotation_demand()

    def _follow_frame_clock(self) -> None:
        """camera_info only while it is the frame clock: with a detector announcing every
        frame it takes, taking camera_info as well would cost a message per frame (~0.35 ms
        of this node's CPU and ~0.25 ms of the camera's at 30 Hz, measured) for nothing.
        auto counts a detector as announcing while its announcements come, not while the graph
        lists it (also after a crash, until its lease expires)."""
        p = self.params
        wanted = p.predict_skipped and (
            p.frame_clock == 'camera_info' or
            (p.frame_clock == 'auto' and not self._detector_announces()))
        if wanted and self.info_sub is None:
            # Raw: only the header is needed, and a CameraInfo costs ~0.25 ms to deserialise.
            self.info_sub = self.create_subscription(
                CameraInfo, 'camera_info', self._on_camera_info, image_qos(p.reliability, 5),
                raw=True)
        elif not wanted and self.info_sub is not None:
            self.destroy_subscription(self.info_sub)
            self.info_sub = None

    def _detector_announces(self) -> bool:
        if self.count_publishers(self._in_flight_topic) == 0:
            return False
        stale = max(_ANNOUNCEMENTS_STALE_S, self.params.max_wait_s)
        # (None: none yet, e.g. a detector still loading its model; camera_info meanwhile.)
        return self._announced_at is not None and \
            time.monotonic() - self._announced_at < stale

    def _follow_annotation_demand(self) -> None:
        """Subscribes to images only while somebody wants annotated_image: no drawing, and no
        image traffic to this node, otherwise."""
        wanted = self.params.annotate and self.annotated_pub.get_subscription_count() > 0
        if wanted and self.image_sub is None:
            self.image_sub = self.create_subscription(
                self._image_type, self._image_topic, self._on_image,
                image_qos(self.params.reliability, 1))
        elif not wanted and self.image_sub is not None:
            self.destroy_subscription(self.image_sub)
            self.image_sub = None
            self.images.clear()
            self.pending.clear()

    def _on_camera_info(self, data: bytes) -> None:
        header = raw_header(data, CameraInfo)
        stamp = stamp_to_seconds(header.stamp)
        self.frame_headers[stamp] = header
        while len(self.frame_headers) > self.sequencer.max_frames:
            self.frame_headers.popitem(last=False)
        self.sequencer.frame(stamp, time.monotonic())
        self._drain()

    def _on_skipped(self, data: bytes) -> None:
        self._skipped(raw_header(data, Header))

    def _skipped(self, header: Header) -> None:
        self._announced(header, self.sequencer.skipped)

    def _on_in_flight(self, data: bytes) -> None:
        self._in_flight(raw_header(data, Header))

    def _in_flight(self, header: Header) -> None:
        self._announced(header, self.sequencer.in_flight)

    def _announced(self, header: Header, register) -> None:
        """A frame the detector announced (skipped or in flight): `register` tells the
        sequencer which."""
        stamp = stamp_to_seconds(header.stamp)
        now = self._announced_at = time.monotonic()
        self.frame_headers.setdefault(stamp, header)
        register(stamp, now)
        self._drain()

    # -- results handed over in this process (the pipeline links a detector to this node) ---

    def _result_handlers(self):
        """What this node takes from a detector, by topic, handed over in this process: the
        messages themselves (detections) and the headers of the announcements."""
        handlers = {'detections': self._on_detections}
        if self.params.predict_skipped:
            handlers.update({'detections/skipped': self._skipped,
                             'detections/in_flight': self._in_flight})
        return handlers

    def takes_local_results(self, detector: Node) -> bool:
        """Whether a detector node of this process publishes the topics this node takes its
        results from (each name resolved by its own node)."""
        return all(self.resolve_topic_name(t) == detector.resolve_topic_name(t)
                   for t in self._result_handlers())

    def use_local_results(self) -> None:
        """From now on the detector's results come through take_local: per frame two messages
        fewer through the middleware (each ~0.5 ms of CPU to publish and ~0.4 ms to take at
        30 Hz on the development machine, see tools/message_cost.py). They are queued and
        taken on this node's executor, where every other callback of this node runs."""
        for sub in self.results_subs:
            self.destroy_subscription(sub)
        self.results_subs = []
        self.local_handlers = self._result_handlers()
        self.local_results = deque()

    def take_local(self, topic: str, msg) -> None:
        """A detector's message for `topic` (relative, as the detector publishes it); called
        on the detector's threads."""
        handler = self.local_handlers.get(topic)
        if handler is None:
            return   # an announcement while predict_skipped is off
        self.local_results.append((handler, msg))   # deque: safe across threads
        executor = self.executor
        if executor is not None:
            # A task, not a guard condition: rclpy's EventsExecutor takes tasks from any
            # thread but has no guard conditions.
            executor.create_task(self._on_local_results)

    def _on_local_results(self) -> None:
        queue = self.local_results
        while queue:
            handler, msg = queue.popleft()
            handler(msg)

    def _on_detections(self, msg: Detection2DArray) -> None:
        self.input_rate.tick()
        # A frame's detections are its announcement too (the detector announces a frame in
        # flight only when something newer goes out before them).
        self._announced_at = time.monotonic()
        dets = msg_to_detections(msg, self.class_index)
        stamp = stamp_to_seconds(msg.header.stamp)
        late = self.sequencer.detections(stamp, (msg.header, dets), time.monotonic())
        if late is not None:  # its frame went out predicted; still worth a measurement
            self.late_detections += 1
            last = self.tracker.last_stamp
            if last is None or stamp >= last:
                self._track(dets, msg.header)
            else:  # older than a measured frame: late, not a replay restarting the tracks
                self.out_of_order += 1
        self._drain()

    def _on_refined(self, msg: Detection2DArray) -> None:
        refined = msg_to_detections(msg, self.class_index, stages=True)
        self.refinement.offer(stamp_to_seconds(msg.header.stamp), refined,
                              self.tracker.last_stamp)

    def _on_deadline(self) -> None:
        self._armed_for = None  # a periodic timer: _drain re-arms or cancels it
        self._drain()

    def _drain(self) -> None:
        self._answer()
        timer = self.deadline_timer
        if timer is None:
            return
        deadline = self.sequencer.next_deadline()
        if deadline is not None and deadline == self._armed_for:
            return  # most events leave the oldest waiting frame, and so the deadline, as it was
        self._armed_for = deadline
        if deadline is None:
            timer.cancel()
            return
        # (+1 ms: the sequencer gives up only once a wait is exceeded.)
        delay = max(0.001, deadline - time.monotonic() + 0.001)
        timer.timer_period_ns = int(delay * 1e9)
        timer.reset()

    def _answer(self) -> None:
        for kind, stamp, payload in self.sequencer.ready(time.monotonic()):
            if kind == MEASURED:
                header, dets = payload
                dets, _ = self.refinement.apply(stamp, dets)
                tracks = self._track(dets, header)
                out = detections_to_msg(tracks, header)
                self.measured_frames += 1
            else:
                header = self.frame_headers.get(stamp)
                if header is None:
                    continue
                tracks = self.tracker.predict(stamp)
                out = detections_to_msg(tracks, header, measured=self.measured_header)
                self.predicted_rate.tick()
                self.predicted_frames += 1
            self.tracks_pub.publish(out)
            self.output_rate.tick()
            if self.image_sub is not None:
                key = stamp_key(header.stamp)
                self.pending[key] = tracks
                self._trim(self.pending)
                self._annotate(key)

    def _track(self, dets, header):
        t0 = time.perf_counter()
        before, rewinds, last = self.tracker.out_of_order, self.tracker.rewinds, \
            self.tracker.last_stamp
        stamp = stamp_to_seconds(header.stamp)
        tracks = self.tracker.update(dets, stamp)
        self.out_of_order += self.tracker.out_of_order - before
        if self.tracker.rewinds != rewinds:
            self.annotator.reset()
            self.get_logger().warning(
                f'stamps jumped back {last - stamp:.1f} s (a replay restarted, or /clock was '
                'reset): tracks start over, ids from 0')
        self.track_time.add(time.perf_counter() - t0)
        self.measured_header = header
        return tracks

    def _on_image(self, msg) -> None:
        key = stamp_key(msg.header.stamp)
        self.images[key] = msg
        self._trim(self.images)
        self._annotate(key)

    def _trim(self, cache: OrderedDict) -> None:
        while len(cache) > self.params.image_cache:
            cache.popitem(last=False)

    def _annotate(self, key) -> None:
        if key not in self.pending or key not in self.images:
            return
        tracks = self.pending.pop(key)
        image = self.images.pop(key)
        try:
            frame = self._to_bgr(image)
        except ImageError as exc:
            self.get_logger().warning(f'cannot annotate: {exc}', throttle_duration_sec=5.0)
            return
        t0 = time.perf_counter()
        canvas = self.annotator.draw(frame, tracks)
        self.annotated_pub.publish(self.writer.write(canvas, image.header))
        self.draw_time.add(time.perf_counter() - t0)
        self.annotated_rate.tick()

    def _diagnose(self):
        track, draw = self.track_time.summary_ms(), self.draw_time.summary_ms()
        rate_in = self.input_rate.rate()
        level, message = (stats.OK, 'tracking') if rate_in > 0 else \
            (stats.WARN, 'no detections arriving')
        return level, message, {
            'input_rate_hz': rate_in, 'output_rate_hz': self.output_rate.rate(),
            'predicted_rate_hz': self.predicted_rate.rate(),
            'wait_for_detections_ms': self.sequencer.wait_s * 1e3,
            'tracking_mean_ms': track['mean_ms'], 'tracking_p95_ms': track['p95_ms'],
            'annotated_rate_hz': self.annotated_rate.rate(),
            'drawing_mean_ms': draw['mean_ms'], 'drawing_p95_ms': draw['p95_ms'],
            'live_tracks': self.tracker.live_tracks, 'out_of_order_dropped': self.out_of_order,
            'measured_frames': self.measured_frames, 'predicted_frames': self.predicted_frames,
            'late_detections': self.late_detections,
            'resets': self.resets, 'rewinds': self.tracker.rewinds,
            'refined_same_frame': self.refinement.counts[SAME_FRAME],
            'refined_carried_over': self.refinement.counts[CARRIED],
            'refined_expired': self.refinement.counts[EXPIRED],
            'results_feed': 'in-process' if self.local_results is not None else
            self.resolve_topic_name('detections'),
        }


main = main_for(TrackerNode)
