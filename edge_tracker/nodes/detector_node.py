"""detector_node: image_raw -> Ultralytics YOLO -> detections (vision_msgs/Detection2DArray).

Inference runs on a worker thread of its own, always on the newest frame."""

import time

from rclpy.node import Node
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from edge_tracker.conversions import ImageError, detections_to_msg, image_to_bgr
from edge_tracker.core import stats
from edge_tracker.core.detector import Detector, ModelError, model_format, resolve_classes
from edge_tracker.core.latest import LatestWorker
from edge_tracker.diagnostics import Diagnostics
from edge_tracker.node_main import main_for
from edge_tracker.params import P, declare
from edge_tracker.qos import RELIABILITY_CHOICES, image_qos, results_qos


def _check_model(value):
    try:
        model_format(value)
    except ModelError as exc:
        return str(exc)
    return None


def _check_imgsz(value):
    return None if value % 32 == 0 else 'must be a multiple of 32 (the network stride)'


def _check_classes(value):
    ok = value == '' or isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                        for v in value))
    return None if ok else 'give class names or indices as a list, or "a,b" text'


PARAMS = [
    P('model', 'yolov8n.pt', 'model file (.pt, .onnx, .engine, .tflite, _edgetpu.tflite, '
      '.torchscript), export folder (_openvino_model/, _ncnn_model/) or a model .yaml',
      check=_check_model, read_only=True),
    P('device', '', "inference device: '' (automatic), cpu, 0, cuda:0, ...", read_only=True),
    P('imgsz', 640, 'network input size (pixels, multiple of 32)', min=32, max=4096,
      check=_check_imgsz, read_only=True),
    P('half', False, 'FP16 inference where the backend supports it', read_only=True),
    P('threads', 0, 'CPU inference threads (0: library default, cores - 1)', min=0, max=256,
      read_only=True),
    P('conf', 0.25, 'minimum detection score (keep below the tracker\'s activation threshold)',
      min=0.0, max=1.0),
    P('iou', 0.7, 'NMS IoU threshold', min=0.0, max=1.0),
    P('classes', '', 'classes to keep: names or indices (list or "a,b"); empty keeps all',
      any_type=True, check=_check_classes),
    P('max_det', 300, 'maximum detections per frame', min=1, max=10000),
    P('reliability', 'best_effort', 'QoS reliability of the image_raw subscription',
      choices=RELIABILITY_CHOICES, read_only=True),
]


class DetectorNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__('detector', **node_kwargs)
        self.params = declare(self, PARAMS, on_change=self._on_change)
        p = self.params
        self.get_logger().info(f'loading {p.model} (imgsz {p.imgsz}, device {p.device or "auto"})')
        self.detector = Detector(p.model, device=p.device, imgsz=p.imgsz, half=p.half,
                                 conf=p.conf, iou=p.iou, max_det=p.max_det, threads=p.threads)
        try:
            self.detector.set_options(classes=resolve_classes(p.classes, self.detector.names))
        except ValueError as exc:
            raise ModelError(f'classes: {exc}') from exc
        self.get_logger().info(f'model ready: backend {self.detector.backend}, '
                               f'{len(self.detector.names)} classes')
        self.pub = self.create_publisher(Detection2DArray, 'detections', results_qos())
        self.input_rate = stats.RateMeter()
        self.output_rate = stats.RateMeter()
        self.infer_time = stats.DurationStats()
        self.age = stats.DurationStats()
        self.bad_images = 0
        self.worker = LatestWorker(self._process, name='inference', on_error=self._on_error)
        self.sub = self.create_subscription(Image, 'image_raw', self._on_image,
                                            image_qos(p.reliability, 1))
        self.diagnostics = Diagnostics(self)
        self.diagnostics.add('inference', self._diagnose)

    def _on_change(self, changes):
        if 'classes' in changes:
            try:
                classes = resolve_classes(changes['classes'], self.detector.names)
            except ValueError as exc:
                return str(exc)
            self.detector.set_options(classes=classes)
        self.detector.set_options(conf=changes.get('conf'), iou=changes.get('iou'),
                                  max_det=changes.get('max_det'))
        return None

    def _on_image(self, msg: Image) -> None:
        self.input_rate.tick()
        self.worker.submit(msg)

    def _process(self, msg: Image) -> None:
        try:
            frame = image_to_bgr(msg)
        except ImageError as exc:
            self.bad_images += 1
            self.get_logger().warning(f'dropping image: {exc}', throttle_duration_sec=5.0)
            return
        t0 = time.perf_counter()
        dets = self.detector.detect(frame)
        self.infer_time.add(time.perf_counter() - t0)
        self.pub.publish(detections_to_msg(dets, msg.header, self.detector.names))
        self.output_rate.tick()
        self.age.add((self.get_clock().now().nanoseconds * 1e-9)
                     - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def _on_error(self, exc: BaseException) -> None:
        self.get_logger().error(f'inference failed: {exc!r}', throttle_duration_sec=5.0)

    def _diagnose(self):
        infer = self.infer_time.summary_ms()
        age = self.age.summary_ms()
        rate_in, rate_out = self.input_rate.rate(), self.output_rate.rate()
        level, message = stats.OK, 'inferring'
        if rate_in == 0.0:
            level, message = stats.WARN, 'no images on image_raw'
        return level, message, {
            'backend': self.detector.backend, 'model': self.params.model,
            'input_rate_hz': rate_in, 'output_rate_hz': rate_out,
            'inference_mean_ms': infer['mean_ms'], 'inference_p95_ms': infer['p95_ms'],
            'stamp_age_mean_ms': age['mean_ms'], 'stamp_age_p95_ms': age['p95_ms'],
            'dropped_frames': self.worker.dropped, 'bad_images': self.bad_images,
        }

    def close(self) -> None:
        self.worker.stop()


main = main_for(DetectorNode)
