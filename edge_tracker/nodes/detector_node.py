"""detector_node: image_raw -> Ultralytics YOLO -> detections (vision_msgs/Detection2DArray).

Inference runs on `workers` threads, each with a model instance of its own, always on the
newest frame; with several workers results finish out of order, and detections/in_flight
tells the tracker which older frames are still being inferred whenever something about a
newer one goes out first (core/latest.InFlight). Which frames are inferred: every
frame_skip-th, times the thermal governor's factor; none while paused at critical; and, with
motion_gate, only those that changed since the last inferred one.

With deep_model set, the cascade's deeper stage runs on a worker thread of its own, on the
newest frame whose quick boxes trigger it (deep_classes, deep_score_band), after that frame's
quick detections are published: it never delays them. Its refinement of the frame goes to
detections/refined with the same header (Detection2D.id: quick, confirmed or added; removed
for the quick boxes it rejected).
"""

import os
import time

from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header, UInt8
from vision_msgs.msg import Detection2DArray, LabelInfo

from edge_tracker.conversions import (TRANSPORTS, ImageError, detections_to_msg, image_from_cdr,
                                      image_transport, label_info_msg, stamp_key,
                                      stamp_to_seconds)
from edge_tracker.core import stats
from edge_tracker.core.cascade import DeepLook, Trigger, keep
from edge_tracker.core.detector import Detector, ModelError, model_format, resolve_classes
from edge_tracker.core.errors import ConfigurationError
from edge_tracker.core.governor import LEVEL_NAMES, Governor, Reactions
from edge_tracker.core.inference_process import RemoteDetector
from edge_tracker.core.latest import (ISOLATION_CHOICES, InFlight, LatestPool, choose_workers,
                                      use_processes, usable_cores)
from edge_tracker.core.motion import MotionGate
from edge_tracker.diagnostics import Diagnostics
from edge_tracker.node_main import main_for
from edge_tracker.params import DOUBLE_ARRAY, P, ParameterError, declare
from edge_tracker.paths import share_directory
from edge_tracker.qos import (RELIABILITY_CHOICES, image_qos, latched_qos, notice_qos,
                              results_qos)


def _check_model(value):
    try:
        model_format(value)
    except ModelError as exc:
        return str(exc)
    return None


def _check_imgsz(value):
    return None if value % 32 == 0 else 'must be a multiple of 32 (the network stride)'


def _check_optional_model(value):
    return _check_model(value) if value else None


def _check_classes(value):
    ok = value == '' or isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                        for v in value))
    return None if ok else 'give class names or indices as a list, or "a,b" text'


def _check_band(value):
    if not (isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return 'give [low, high], two numbers'
    low, high = float(value[0]), float(value[1])
    if not 0.0 <= low <= 1.0 or not 0.0 <= high <= 1.0:
        return 'both ends must lie in [0, 1]'
    if low > high:
        return 'low must not be above high (low == high turns the band off)'
    return None


PARAMS = [
    P('model', 'yolov8n.pt', 'model file (.pt, .onnx, .engine, .tflite, _edgetpu.tflite, '
      '.torchscript), export folder (_openvino_model/, _ncnn_model/) or a model .yaml',
      check=_check_model, read_only=True),
    P('device', '', "inference device: '' (automatic), cpu, 0, cuda:0, ...", read_only=True),
    P('imgsz', 640, 'network input size (pixels, multiple of 32)', min=32, max=4096,
      check=_check_imgsz, read_only=True),
    P('half', False, 'FP16 inference where the backend supports it', read_only=True),
    P('workers', 0, 'model instances inferring frames in parallel, each on its own thread '
      '(0: automatic from the cores and the backend: CPU backends fill the cores, an '
      'accelerator gets 1)', min=0, max=64, read_only=True),
    P('threads', 0, 'CPU threads per worker (0: automatic, workers x threads = cores; on a '
      'CPU backend lowered to fit the cores)', min=0, max=256, read_only=True),
    P('isolation', 'auto', 'where each worker\'s model runs: thread (in this process), process '
      '(a process of its own: its own interpreter lock), auto (process for several workers '
      'on the CPU, else thread)', choices=ISOLATION_CHOICES, read_only=True),
    P('enabled', True, 'run detection; false stops inference and image traffic to this node '
      '(the tracker predicts, then its tracks empty) until set true again'),
    P('conf', 0.25, 'minimum detection score (keep below the tracker\'s activation threshold)',
      min=0.0, max=1.0),
    P('iou', 0.7, 'NMS IoU threshold', min=0.0, max=1.0),
    P('classes', '', 'classes to keep: names or indices (list or "a,b"); empty keeps all',
      any_type=True, check=_check_classes),
    P('max_det', 300, 'maximum detections per frame', min=1, max=10000),
    P('reliability', 'best_effort', 'QoS reliability of the image_raw subscription',
      choices=RELIABILITY_CHOICES, read_only=True),
    P('transport', 'raw', 'image transport: raw (image_raw, sensor_msgs/Image) or compressed '
      '(image_raw/compressed, sensor_msgs/CompressedImage, decoded here)',
      choices=TRANSPORTS, read_only=True),
    P('frame_skip', 1, 'run the network on every Nth frame (the tracker predicts the others)',
      min=1, max=1000),
    P('motion_gate', False, 'skip inference while the image does not change'),
    P('motion_min_changed', 0.002, 'share of (downscaled) pixels that must change to count as '
      'motion', min=0.0, max=1.0),
    P('motion_refresh_s', 2.0, 'infer at least this often without motion (0: never)',
      min=0.0, max=3600.0),
    P('fallback_model', '', 'lighter model used from fallback_level on (empty: the main model '
      'at fallback_imgsz)', check=_check_optional_model, read_only=True),
    P('fallback_imgsz', 0, 'input size of the fallback (0: imgsz)', min=0, max=4096,
      check=lambda v: None if v % 32 == 0 else 'must be a multiple of 32', read_only=True),
    P('warm_frame_skip', 2, 'frame_skip factor at throttle level 1 (warm)', min=1, max=1000),
    P('hot_frame_skip', 3, 'frame_skip factor at throttle level 2 (hot)', min=1, max=1000),
    P('critical_frame_skip', 6, 'frame_skip factor at level 3 (critical) when not paused',
      min=1, max=1000),
    P('fallback_level', 2, 'throttle level from which the fallback model is used (4: never)',
      min=1, max=4),
    P('critical_pause', True, 'pause inference at throttle level 3 (critical)'),
    P('deep_model', '', "the cascade's deeper stage: the model that looks again at frames whose "
      'quick boxes trigger it (empty: off; the file of `model` again: that network on crops)',
      check=_check_optional_model, read_only=True),
    P('deep_imgsz', 320, 'input size of the deeper model (pixels, multiple of 32)', min=32,
      max=4096, check=_check_imgsz, read_only=True),
    P('deep_window', 320, 'side of the square crops around triggering boxes, in image pixels '
      '(0: the deeper model sees the whole frame)', min=0, max=16384, read_only=True),
    P('deep_max_regions', 4, 'at most this many crops per frame, the most uncertain boxes first',
      min=1, max=64, read_only=True),
    P('deep_classes', '', 'classes whose quick boxes trigger the deeper stage: names or indices '
      '(list or "a,b"); empty: none', any_type=True, check=_check_classes, read_only=True),
    P('deep_score_band', [0.0, 0.0], 'quick boxes scoring in [low, high) trigger the deeper '
      'stage; low below conf lets boxes the tracker never gets trigger it too (low == high: off)',
      type=DOUBLE_ARRAY, check=_check_band, read_only=True),
    P('deep_recheck_s', 0.0, 'a triggering box overlapping what a deeper look judged less than '
      'this long ago (stamp time) does not trigger again: an uncertain object is looked at once '
      'per interval, not on every frame (0: every time)', min=0.0, max=3600.0, read_only=True),
    P('deep_max_box_px', 0, 'only boxes whose longer side is below this (image pixels) trigger '
      'the deeper stage (0: any size)', min=0, max=100000, read_only=True),
]
REACTIONS = ('warm_frame_skip', 'hot_frame_skip', 'critical_frame_skip', 'fallback_level',
             'critical_pause')


class _LocalImage:
    """What the detector keeps of a frame handed over in-process: its header."""
    __slots__ = ('header',)

    def __init__(self, header: Header) -> None:
        self.header = header


class DetectorNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__('detector', **node_kwargs)
        self.params = declare(self, PARAMS, on_change=self._on_change)
        p = self.params
        low, high = p.deep_score_band
        if p.deep_model and not (p.deep_classes or low < high):
            # Refused before seconds of model loading (the classes themselves need the model).
            raise ParameterError('deep_model is set but nothing triggers it: give deep_classes '
                                 'or a deep_score_band with low < high')
        cores = usable_cores()
        fmt = model_format(p.model)
        self.workers, self.threads = choose_workers(cores, fmt, p.device, p.workers, p.threads)
        self.processes = use_processes(p.isolation, self.workers, fmt, p.device)
        if p.threads and self.threads < p.threads:
            self.get_logger().warning(
                f'threads {p.threads} x workers {self.workers} is more than the {cores} cores: '
                f'{self.threads} thread(s) per worker (a thread without a core stalls its '
                'worker at every layer)')
        self.closing = False
        self.get_logger().info(
            f'loading {p.model} (imgsz {p.imgsz}, device {p.device or "auto"}, '
            f'{self.workers} worker(s) x {self.threads} thread(s) on {cores} cores, '
            + ('a process per worker)' if self.processes else 'in this process)'))
        # Each worker loads, warms up and infers on its own thread: PyTorch set up on the main
        # thread and run on another kept two OpenMP pools on 2 cores and inferred at half
        # speed (48 vs 25 ms). torch's thread count is per calling thread once it has run, so
        # every worker sets its own after Ultralytics' predictor set-up has reset it.
        self.deep = None                         # the cascade's deeper stage, when configured
        self.models = [None] * self.workers      # per worker: its main Detector
        self.fallbacks = [None] * self.workers   # per worker: loaded on first use, then kept
        self.worker_infer = [stats.DurationStats() for _ in range(self.workers)]
        self.in_flight = InFlight()   # announcements and results go out in stamp order
        self.pool = LatestPool(self._process, self.workers, name='inference',
                               on_error=self._on_error, on_drop=self._on_drop,
                               on_take=self._on_take, init=self._load_main)
        self.pool.wait_ready()
        self.detector = self.models[0]
        self.deep = self._start_deep()
        self.get_logger().info(f'model ready: backend {self.detector.backend}, '
                               f'{len(self.detector.names)} classes')
        # Published through _send (also to the trackers of this process the pipeline links).
        self.result_pubs = {
            'detections': self.create_publisher(Detection2DArray, 'detections', results_qos()),
            # Headers of frames that will get no detections (skipped, gated, paused, unreadable,
            # passed over by the newest-wins hand-off), so the tracker answers them at once.
            'detections/skipped': self.create_publisher(Header, 'detections/skipped',
                                                        notice_qos()),
            # Headers of frames a worker is still on when a newer frame's detections or skip
            # notice go out: the tracker waits for these (they finish after newer ones).
            'detections/in_flight': self.create_publisher(Header, 'detections/in_flight',
                                                          notice_qos())}
        # The class map, latched as vision_msgs recommends: a late subscriber still gets it.
        self.label_info_pub = self.create_publisher(LabelInfo, 'label_info', latched_qos())
        self._publish_label_info(p.conf)
        self.input_rate = stats.RateMeter()
        self.output_rate = stats.RateMeter()
        self.infer_time = stats.DurationStats()
        self.age = stats.DurationStats()
        self.bad_images = 0
        self.governor = Governor(Reactions(**{k: p[k] for k in REACTIONS}), p.frame_skip,
                                 has_fallback=bool(p.fallback_model or p.fallback_imgsz),
                                 has_deep=self.deep is not None)
        self.gate = self._make_gate() if p.motion_gate else None
        self.frames_in = 0
        self.skipped = 0
        self.paused = 0
        self.create_subscription(UInt8, 'thermal/throttle', self._on_throttle, latched_qos())
        self._image_type, self._image_topic, self._to_bgr = image_transport(
            self, 'image_raw', p.transport)
        self.sub = None
        self.info_sub = None
        self.local_feed = False   # frames come from a camera node in this process (pipeline)
        self.local_trackers = ()  # tracker nodes of this process fed directly (pipeline)
        self._follow_enabled(p.enabled)
        self.diagnostics = Diagnostics(self)
        self.diagnostics.add('inference', self._diagnose)
        if self.deep is not None:
            self.diagnostics.add('cascade', self.deep.diagnose)

    def _on_change(self, changes):
        if 'classes' in changes:
            try:
                resolved = [(d, resolve_classes(changes['classes'], d.names))
                            for d in self._loaded()]
            except ValueError as exc:
                return str(exc)
            for detector, classes in resolved:
                detector.set_options(classes=classes)
        conf = changes.get('conf')
        for detector in self._loaded():
            detector.set_options(conf=None if conf is None else self._quick_conf(conf),
                                 iou=changes.get('iou'), max_det=changes.get('max_det'))
        if self.deep is not None:
            self.deep.detector.set_options(
                conf=None if conf is None else self._quick_conf(conf), iou=changes.get('iou'),
                max_det=changes.get('max_det'))
        if 'conf' in changes:
            self._publish_label_info(changes['conf'])
        if any(k in changes for k in REACTIONS + ('frame_skip',)):
            merged = {k: changes.get(k, self.params[k]) for k in REACTIONS}
            self._apply_mode(*self.governor.update(reactions=Reactions(**merged),
                                                   frame_skip=changes.get('frame_skip')),
                             'parameters changed')
        if 'motion_gate' in changes or any(k.startswith('motion_') for k in changes):
            enabled = changes.get('motion_gate', self.params.motion_gate)
            self.gate = self._make_gate(changes) if enabled else None
        if 'enabled' in changes and changes['enabled'] != self.params.enabled:
            self.get_logger().info('detection ' + ('enabled' if changes['enabled'] else
                                                   'disabled (enabled: false)'))
            self._follow_enabled(changes['enabled'])
        return None

    def _follow_enabled(self, enabled: bool) -> None:
        """Enabled: images in. Disabled: no image traffic at all; camera_info (same headers,
        a few hundred bytes) only to announce every frame as skipped, so the tracker answers
        it at once with predictions instead of after its wait for detections."""
        qos = image_qos(self.params.reliability, 1)
        if enabled and self.sub is None and not self.local_feed:
            # Raw images arrive serialised and are read in place (image_from_cdr): a frame the
            # newest-wins hand-off drops is never copied into a message.
            self.sub = self.create_subscription(self._image_type, self._image_topic,
                                                self._on_image, qos,
                                                raw=self.params.transport == 'raw')
        if (not enabled or self.local_feed) and self.sub is not None:
            self.destroy_subscription(self.sub)
            self.sub = None
        if not enabled and self.info_sub is None:
            self.info_sub = self.create_subscription(CameraInfo, 'camera_info', self._skip, qos)
        if enabled and self.info_sub is not None:
            self.destroy_subscription(self.info_sub)
            self.info_sub = None

    def _publish_label_info(self, conf: float) -> None:
        header = Header()
        header.stamp = self.get_clock().now().to_msg()
        self.label_info_pub.publish(label_info_msg(self.detector.names, conf, header))

    def _make_gate(self, changes=None) -> MotionGate:
        get = (changes or {}).get
        return MotionGate(
            min_changed_fraction=get('motion_min_changed', self.params.motion_min_changed),
            refresh_s=get('motion_refresh_s', self.params.motion_refresh_s))

    def _on_throttle(self, msg: UInt8) -> None:
        level = min(3, int(msg.data))
        self._apply_mode(*self.governor.update(level=level),
                         f'thermal level {level} ({LEVEL_NAMES[level]})')

    def _apply_mode(self, changed, mode, reason) -> None:
        if not changed:
            return
        # rclpy wants one severity per call site, hence two calls.
        if mode.level >= 2:
            self.get_logger().warning(f'{reason}: {mode.describe()}')
        else:
            self.get_logger().info(f'{reason}: {mode.describe()}')

    def takes_local_frames(self, camera_topic: str) -> bool:
        """Whether a camera node in this process publishing `camera_topic` can hand its
        frames to this detector directly (raw transport, the same resolved topic)."""
        return self.params.transport == 'raw' and \
            self.resolve_topic_name(self._image_topic) == camera_topic

    def use_local_feed(self) -> None:
        """From now on frames come through offer_local (the pipeline links the nodes of one
        process): the image_raw subscription goes, and with it a serialisation, a copy into
        shared memory, a take and an executor wake-up per frame."""
        self.local_feed = True
        self._follow_enabled(self.params.enabled)

    def offer_local(self, header: Header, frame) -> None:
        """A camera frame from this process (called on the camera's capture thread; the
        frame's buffer is the camera's and is reused after this returns)."""
        if self.params.enabled and not self.closing:
            self._intake(_LocalImage(header), frame)

    def _on_image(self, msg) -> None:
        if isinstance(msg, bytes):
            msg = image_from_cdr(msg) or deserialize_message(msg, self._image_type)
        self._intake(msg, None)

    def _intake(self, msg, frame) -> None:
        """One camera frame (`frame`: its BGR pixels when they did not come in `msg`):
        skipped, gated, or handed to the newest-wins workers."""
        self.input_rate.tick()
        mode = self.governor.mode
        index = self.frames_in
        self.frames_in += 1
        if mode.paused:
            self.paused += 1
            return self._skip(msg)
        if index % mode.frame_skip:
            self.skipped += 1
            return self._skip(msg)
        local = frame is not None
        if not local:
            try:
                frame = self._to_bgr(msg)  # decoded once, only for frames that may be inferred
            except ImageError as exc:
                self.bad_images += 1
                self.get_logger().warning(f'dropping image: {exc}', throttle_duration_sec=5.0)
                return self._skip(msg)
        gate = self.gate
        if gate is not None and not gate.check(frame, time.monotonic()):
            return self._skip(msg)
        # A local frame is the camera's reused buffer: a copy (0.1 ms at 640x480) for the worker.
        self.pool.submit((msg, frame.copy() if local else frame, mode.use_fallback))

    def _skip(self, msg) -> None:
        self._send('detections/skipped', msg.header)

    def _on_take(self, index: int, job) -> None:
        # Announced only once something newer goes out while it is still in flight (_send).
        header = job[0].header
        self.in_flight.taken(stamp_key(header.stamp), header)

    def _send(self, topic: str, msg) -> None:
        """A frame's detections or skip notice, after the older frames still in flight that
        the tracker has not heard of (detections/in_flight): it holds this frame back for
        them (in_flight keeps another thread's newer message from overtaking them)."""
        key = stamp_key((msg if isinstance(msg, Header) else msg.header).stamp)
        self.in_flight.send(key, lambda header: self._publish('detections/in_flight', header),
                            lambda: self._publish(topic, msg))

    def _publish(self, topic: str, msg) -> None:
        """To the trackers of this process fed directly, and on the topic (with such a
        tracker, only while anyone else subscribes)."""
        for tracker in self.local_trackers:
            tracker.take_local(topic, msg)
        pub = self.result_pubs[topic]
        if not self.local_trackers or pub.get_subscription_count() > 0:
            pub.publish(msg)

    def add_local_tracker(self, tracker) -> None:
        """A tracker node in this process takes this detector's results directly (the pipeline
        links them; see TrackerNode.use_local_results); the topics still carry them to anyone
        else who subscribes."""
        self.local_trackers = self.local_trackers + (tracker,)

    def _on_drop(self, job) -> None:
        # The tracker's frame clock is what the detector sends (camera_info only while no
        # detector announces), so every frame it receives gets detections or, like this one,
        # a skip notice.
        self._skip(job[0])

    def _loaded(self):
        return [d for d in self.models + self.fallbacks if d is not None]

    def _model(self, index: int, use_fallback: bool) -> Detector:
        """Worker `index`'s model for this frame (its own fallback is loaded on its thread)."""
        if not use_fallback or not self.governor.has_fallback:
            return self.models[index]
        if self.fallbacks[index] is None:
            p = self.params
            model = p.fallback_model or p.model
            imgsz = p.fallback_imgsz or p.imgsz
            self.get_logger().info(f'loading fallback model {model} at imgsz {imgsz}'
                                   + (f' (worker {index})' if self.workers > 1 else ''))
            try:
                fallback = self._load(model, imgsz, beside=self.models[index])
                fallback.set_options(classes=resolve_classes(p.classes, fallback.names))
            except (ConfigurationError, ValueError) as exc:
                # Keep serving with the main model rather than failing every frame.
                self.get_logger().error(f'fallback unusable, staying on the main model: {exc}')
                self.governor.has_fallback = False
                self.governor.update()
                return self.models[index]
            self.fallbacks[index] = fallback
        return self.fallbacks[index]

    def _load_main(self, index: int) -> None:
        p = self.params
        detector = self._load(p.model, p.imgsz)
        try:
            detector.set_options(classes=resolve_classes(p.classes, detector.names))
        except ValueError as exc:
            raise ModelError(f'classes: {exc}') from exc
        self.models[index] = detector

    def _quick_conf(self, conf: float) -> float:
        """The quick models' score floor: `conf`, or the deeper stage's band's low end when
        that is lower (those boxes trigger it; only boxes >= conf are published)."""
        p = self.params
        low, high = p.deep_score_band
        return min(conf, low) if p.deep_model and low < high else conf

    def _start_deep(self):
        """The deeper stage's worker, loaded and warmed up, or None when it is off."""
        p = self.params
        if not p.deep_model:
            return None
        try:
            classes = resolve_classes(p.deep_classes, self.detector.names) or []
        except ValueError as exc:
            raise ParameterError(f'deep_classes: {exc}') from exc
        low, high = p.deep_score_band
        trigger = Trigger(classes=tuple(classes), low=low, high=high,
                          max_side=p.deep_max_box_px)
        if not trigger.active:
            raise ParameterError('deep_model is set but nothing triggers it: give deep_classes '
                                 'or a deep_score_band with low < high')
        self.get_logger().info(f'loading deeper stage {p.deep_model} (imgsz {p.deep_imgsz}, '
                               + (f'{p.deep_window} px windows' if p.deep_window else
                                  'whole frame') + ')')
        deep = DeepStage(self, trigger)
        deep.pool.wait_ready()
        return deep

    def _load(self, model: str, imgsz: int, beside=None):
        """A Detector here, or in a process of its own (a fallback goes into its main model's
        process: no second process, and the libraries are loaded there already)."""
        p = self.params
        spec = dict(model=model, device=p.device, imgsz=imgsz, half=p.half,
                    conf=self._quick_conf(p.conf),
                    iou=p.iou, max_det=p.max_det, threads=self.threads,
                    search_dirs=[os.path.join(share_directory(), 'models')])
        if self.processes and beside is not None:
            return beside.sibling(spec)
        if self.processes:
            return RemoteDetector(spec, log=self.get_logger().info)
        return Detector(log=self.get_logger().info, **spec)

    def _process(self, index: int, job) -> None:
        msg, frame, use_fallback = job
        detector = self._model(index, use_fallback)
        t0 = time.perf_counter()
        dets = detector.detect(frame)
        elapsed = time.perf_counter() - t0
        self.infer_time.add(elapsed)
        self.worker_infer[index].add(elapsed)
        deep = self.deep
        out = detections_to_msg(keep(dets, self.params.conf) if deep else dets, msg.header,
                                detector.names)
        self._send('detections', out)
        self.output_rate.tick()
        if deep is not None:
            deep.offer(msg.header, frame, dets, self.governor.mode.deep and not use_fallback)
        now = self.get_clock().now().nanoseconds * 1e-9
        if now > 0:  # zero: use_sim_time and no /clock yet
            self.age.add(now - stamp_to_seconds(msg.header.stamp))

    def _on_error(self, exc: BaseException, job) -> None:
        if self.closing or not self.context.ok():
            return  # shutting down: the frame in flight has nowhere to go
        self.get_logger().error(f'inference failed: {exc!r}', throttle_duration_sec=5.0)
        self._skip(job[0])  # no detections will come: the tracker need not wait for them

    def _diagnose(self):
        infer = self.infer_time.summary_ms()
        age = self.age.summary_ms()
        per_worker = {}
        for i, times in enumerate(self.worker_infer):
            per_worker[f'worker{i}_inference_mean_ms'] = times.summary_ms()['mean_ms']
            per_worker[f'worker{i}_frames'] = self.pool.done[i]
        rate_in, rate_out = self.input_rate.rate(), self.output_rate.rate()
        inference_cpu = sum(getattr(d, 'cpu_s', 0.0) for d in self._loaded())
        level, message = stats.OK, self.governor.mode.describe()
        if not self.params.enabled:
            level, message = stats.OK, 'disabled (enabled: false)'
        elif rate_in == 0.0:
            level, message = stats.WARN, 'no images on image_raw'
        elif self.governor.level >= 2:
            level = stats.WARN
        return level, message, {
            'backend': self.detector.backend, 'model': self.params.model,
            'enabled': self.params.enabled,
            'input_rate_hz': rate_in, 'output_rate_hz': rate_out,
            'inference_mean_ms': infer['mean_ms'], 'inference_p95_ms': infer['p95_ms'],
            'stamp_age_mean_ms': age['mean_ms'], 'stamp_age_p95_ms': age['p95_ms'],
            'dropped_frames': self.pool.dropped, 'bad_images': self.bad_images,
            'received_frames': self.frames_in,
            'inferred_frames': self.pool.processed, 'skipped_frames': self.skipped,
            'announced_in_flight': self.in_flight.announced,
            'paused_frames': self.paused,
            'motion_blocked_frames': self.gate.blocked if self.gate else 0,
            'throttle_level': self.governor.level, 'mode': self.governor.mode.describe(),
            'effective_frame_skip': self.governor.mode.frame_skip,
            'workers': self.workers, 'threads_per_worker': self.threads,
            'busy_workers': sum(self.pool.busy), 'rss_mb': stats.process_rss_mb(),
            'inference_processes_rss_mb': sum(
                stats.rss_kb(d.pid) or 0 for d in self.models if getattr(d, 'pid', 0)) / 1024.0,
            'isolation': 'process' if self.processes else 'thread',
            'image_feed': 'in-process' if self.local_feed else self._image_topic,
            'inference_restarts': sum(getattr(d, 'restarts', 0) for d in self._loaded()),
            # Cumulative, read together: the share of the node's CPU (its inference processes
            # included) that is inference.
            'inference_cpu_s': inference_cpu,
            'process_cpu_s': time.process_time() + (inference_cpu if self.processes else 0.0),
            **per_worker,
        }

    def close(self) -> None:
        # An inference in flight has nowhere to publish: do not hold the exit up for it
        # (a slow model takes seconds); the worker is a daemon thread.
        self.closing = True
        self.pool.stop(timeout=0.3)
        for detector in self._loaded():
            close = getattr(detector, 'close', None)
            if close is not None:
                close()
        if self.deep is not None:
            self.deep.pool.stop(timeout=0.3)
            close = getattr(self.deep.detector, 'close', None)
            if close is not None:
                close()


class DeepStage:
    """The cascade's deeper stage in the detector node: its own model on its own worker thread,
    fed by a newest-wins slot (a triggering frame that arrives while it is busy replaces the
    waiting one), publishing detections/refined. The quick workers only offer it frames."""

    def __init__(self, node: DetectorNode, trigger: Trigger) -> None:
        self.node = node
        self.trigger = trigger
        self.look = None
        self.detector = None
        self.pub = node.create_publisher(Detection2DArray, 'detections/refined', results_qos())
        self.quick_frames = 0       # quick-stage results offered
        self.triggered = 0          # of those, frames whose boxes triggered it
        self.stopped = 0            # triggered while the thermal governor had it stopped
        self.changed = {'confirmed': 0, 'added': 0, 'removed': 0}
        self.crops = 0
        self.deep_time = stats.DurationStats()
        self.pool = LatestPool(self._run, 1, name='deep', on_error=self._on_error,
                               init=self._load)

    def _load(self, index: int) -> None:
        p = self.node.params
        # The quick models' score floor (the band's low end, or conf); published boxes are
        # those >= conf, and the removed ones.
        detector = self.node._load(p.deep_model, p.deep_imgsz)
        self.detector = detector
        self.look = DeepLook(detector.detect_many, self.trigger, p.deep_window,
                             p.deep_max_regions, p.deep_recheck_s)

    def offer(self, header, frame, quick, allowed: bool) -> None:
        """From a quick worker, after its detections went out: cheap (a mask over the boxes)."""
        self.quick_frames += 1
        if not self.look.wanted(quick, stamp_to_seconds(header.stamp)):
            return
        self.triggered += 1
        if not allowed:
            self.stopped += 1
            return
        self.pool.submit((header, frame, quick))

    def _run(self, index: int, job) -> None:
        header, frame, quick = job
        t0 = time.perf_counter()
        result = self.look.look(frame, quick, stamp_to_seconds(header.stamp))
        self.deep_time.add(time.perf_counter() - t0)
        if result is None:
            return
        refined, counts, windows = result
        self.crops += len(windows)
        for key, value in counts.items():
            self.changed[key] += value
        self.pub.publish(detections_to_msg(keep(refined, self.node.params.conf), header,
                                           self.node.detector.names))

    def _on_error(self, exc: BaseException, job) -> None:
        if self.node.context.ok():
            self.node.get_logger().error(f'deeper stage failed: {exc!r}',
                                         throttle_duration_sec=5.0)

    def diagnose(self):
        deep = self.deep_time.summary_ms()
        quick = self.node.infer_time.summary_ms()
        mode = self.node.governor.mode
        message = 'deeper stage on' if mode.deep else \
            f'deeper stage stopped (thermal level {mode.level})'
        return stats.OK, message, {
            'quick_runs': self.quick_frames, 'quick_mean_ms': quick['mean_ms'],
            'triggered_frames': self.triggered, 'deep_runs': self.pool.processed,
            'deep_dropped': self.pool.dropped, 'deep_stopped_frames': self.stopped,
            'deep_mean_ms': deep['mean_ms'], 'deep_p95_ms': deep['p95_ms'],
            'deep_busy': self.pool.busy[0], 'crops': self.crops,
            'boxes_confirmed': self.changed['confirmed'], 'boxes_added': self.changed['added'],
            'boxes_removed': self.changed['removed'],
        }


main = main_for(DetectorNode)
