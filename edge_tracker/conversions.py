"""The one place where ROS messages become numpy / supervision objects and back.

Images: OpenCV and the models work on BGR uint8; every supported encoding is brought to that once,
here, and anything else is refused with an ImageError that says why. Compressed images
(sensor_msgs/CompressedImage on `<base>/compressed`, image_transport's naming) are decoded here
too, once, with OpenCV.
Detections: vision_msgs 4.x layout (Humble and later): bbox.center.position.{x,y}, bbox.size_x/y,
results[i].hypothesis.{class_id,score}, Detection2D.id (the track id on `tracks`; the stage,
quick / confirmed / added, on `detections/refined`).
"""

import array
import math
import struct
from typing import Dict, Mapping, Optional

import cv2
import numpy as np
import supervision as sv
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import (Detection2D, Detection2DArray, LabelInfo, ObjectHypothesisWithPose,
                             VisionClass)

from edge_tracker.core.calibration import Calibration
from edge_tracker.core.cascade import QUICK, STAGE_NAMES

_STAGE_CODES = {name: code for code, name in STAGE_NAMES.items()}

# encoding -> (channels, numpy dtype)
_LAYOUTS: Dict[str, tuple] = {
    'bgr8': (3, np.uint8), 'rgb8': (3, np.uint8), 'bgra8': (4, np.uint8), 'rgba8': (4, np.uint8),
    'mono8': (1, np.uint8), '8UC1': (1, np.uint8), '8UC3': (3, np.uint8),
    'mono16': (1, np.uint16), '16UC1': (1, np.uint16),
    'bgr16': (3, np.uint16), 'rgb16': (3, np.uint16),
}
SUPPORTED_ENCODINGS = tuple(sorted(_LAYOUTS))


class ImageError(ValueError):
    """An image the pipeline cannot use; the message says what is wrong with it."""


def image_to_bgr(msg: Image) -> np.ndarray:
    """BGR uint8 HxWx3 view or copy of a sensor_msgs/Image; raises ImageError if unusable."""
    enc = msg.encoding
    if enc not in _LAYOUTS:
        raise ImageError(f'unsupported encoding {enc!r} (supported: {", ".join(SUPPORTED_ENCODINGS)})')
    channels, dtype = _LAYOUTS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageError(f'empty image ({w}x{h})')
    itemsize = np.dtype(dtype).itemsize
    row = w * channels * itemsize
    if step < row:
        raise ImageError(f'step {step} is shorter than a {w}-pixel {enc} row ({row} bytes)')
    if len(msg.data) != step * h:
        raise ImageError(f'data has {len(msg.data)} bytes, expected height*step = {h * step}')
    buf = np.frombuffer(msg.data, np.uint8).reshape(h, step)[:, :row]
    img = buf.view(np.dtype(dtype).newbyteorder('>' if msg.is_bigendian else '<')) \
        if itemsize > 1 else buf
    img = img.reshape(h, w, channels)
    if itemsize > 1:
        img = (img >> 8).astype(np.uint8)  # keep the high byte: 16-bit to 8-bit
    if enc in ('bgr8', '8UC3', 'bgr16'):
        return img
    if enc in ('rgb8', 'rgb16'):
        return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if enc == 'bgra8':
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if enc == 'rgba8':
        return cv2.cvtColor(img, cv2.COLOR_RGBA2BGR)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def compressed_to_bgr(msg: CompressedImage) -> np.ndarray:
    """BGR uint8 HxWx3 decoded from a sensor_msgs/CompressedImage (JPEG, PNG, or anything else
    OpenCV reads); raises ImageError if it cannot be decoded.

    image_transport's compressed plugin writes `format` as "<encoding>; jpeg compressed bgr8"
    (older publishers: just "jpeg" or "png") and always encodes colour as BGR, so the decoded
    pixels are BGR whatever the original encoding was; 16-bit PNGs come out as 8 bits.
    """
    fmt = msg.format or ''
    if 'compressedDepth' in fmt:
        raise ImageError(f'format {fmt!r} is a depth image (compressedDepth), not a camera image')
    if len(msg.data) == 0:
        raise ImageError('compressed image has no data')
    img = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError(f'cannot decode {len(msg.data)} bytes of format {fmt!r}')
    return img


TRANSPORTS = ('raw', 'compressed')


def image_transport(node, base: str, transport: str):
    """(message type, topic, to-BGR function) for subscribing to `base` over `transport`, named
    as image_transport names it: `raw` is the base topic itself, `compressed` is
    `<base>/compressed` after the base is remapped (so `image_raw:=/cam/image` also moves the
    compressed topic to /cam/image/compressed)."""
    if transport == 'raw':
        return Image, base, image_to_bgr
    if transport == 'compressed':
        return CompressedImage, transport_topic(node, base, 'compressed'), compressed_to_bgr
    raise ValueError(f'unknown image transport {transport!r} (one of {", ".join(TRANSPORTS)})')


def transport_topic(node, base: str, transport: str) -> str:
    """`<base>/<transport>` with `base` resolved (namespace, remappings) by `node` first."""
    resolve = getattr(node, 'resolve_topic_name', None)
    return f'{resolve(base) if resolve is not None else base}/{transport}'


class CompressedWriter:
    """Fills a sensor_msgs/CompressedImage with a JPEG of BGR frames, as image_transport's
    compressed plugin names it: format "bgr8; jpeg compressed bgr8"."""

    def __init__(self) -> None:
        self.msg = CompressedImage()
        self.msg.format = 'bgr8; jpeg compressed bgr8'

    def write(self, frame: np.ndarray, header: Header, quality: int) -> CompressedImage:
        ok, buf = cv2.imencode('.jpg', frame, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
        if not ok:
            raise ImageError(f'JPEG encoding failed for a {frame.shape} {frame.dtype} frame')
        data = array.array('B')
        data.frombytes(buf)  # an array.array is taken as is; bytes would be checked per byte
        self.msg.data = data
        self.msg.header = header
        return self.msg


class ImageWriter:
    """Fills a sensor_msgs/Image from BGR frames, reusing the message's byte buffer."""

    def __init__(self) -> None:
        self.msg = Image()
        self.msg.encoding = 'bgr8'
        self._view: Optional[np.ndarray] = None

    def frame_buffer(self, shape) -> Optional[np.ndarray]:
        """The message's own bytes as an HxWx3 uint8 array: a frame written there (decoded,
        resized) is published without a copy. None for any other shape."""
        if len(shape) != 3 or shape[2] != 3:
            return None
        n = shape[0] * shape[1] * 3
        if self._view is None or self._view.shape != tuple(shape):
            self.msg.data = array.array('B', bytes(n))
            self._view = np.frombuffer(self.msg.data, np.uint8).reshape(shape)
        return self._view

    def write(self, frame: np.ndarray, header: Header) -> Image:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ImageError(f'expected an HxWx3 uint8 BGR frame, got {frame.shape} {frame.dtype}')
        h, w = frame.shape[:2]
        msg = self.msg
        view = self.frame_buffer(frame.shape)
        if view.ctypes.data != frame.ctypes.data:   # not written in place (frame_buffer)
            # Into the message's own array: the setter would copy (or check every byte).
            np.copyto(view, frame)
        msg.header = header
        msg.height, msg.width, msg.step = h, w, w * 3
        msg.is_bigendian = 0
        return msg


def camera_info_msg(width: int, height: int, header: Header,
                    calibration: Optional[Calibration] = None) -> CameraInfo:
    """CameraInfo for the published image size: the calibration when there is one, else an
    uncalibrated one (K all zero, as ROS documents for an uncalibrated camera)."""
    info = CameraInfo()
    info.header = header
    info.width, info.height = int(width), int(height)
    if calibration is not None:
        c = calibration.scaled_to(width, height)
        info.distortion_model = c.distortion_model
        info.d = [float(v) for v in c.d]
        info.k = [float(v) for v in c.k]
        info.r = [float(v) for v in c.r]
        info.p = [float(v) for v in c.p]
    else:
        info.distortion_model = 'plumb_bob'
    return info


def detections_to_msg(dets: sv.Detections, header: Header,
                      names: Optional[Mapping[int, str]] = None,
                      measured: Optional[Header] = None) -> Detection2DArray:
    """Detection2DArray for `dets` (xyxy pixels). Track ids (dets.tracker_id) go to
    Detection2D.id; class names come from dets.data['class_name'] or `names`.

    Each Detection2D.header is the header of the image its box was measured in: `header` for
    measured boxes, `measured` (an older frame) for boxes predicted onto this frame. Without
    track ids, the cascade's stage of each box (dets.data['stage']) goes to Detection2D.id as
    its name (quick, confirmed, added).
    """
    out = Detection2DArray()
    out.header = header
    n = len(dets)
    if n == 0:
        return out
    xyxy = np.asarray(dets.xyxy, dtype=np.float64)
    conf = dets.confidence if dets.confidence is not None else np.ones(n)
    class_ids = dets.class_id if dets.class_id is not None else np.full(n, -1)
    class_names = dets.data.get('class_name') if dets.data else None
    track_ids = dets.tracker_id
    stages = dets.data.get('stage') if dets.data and track_ids is None else None
    detections = []
    for i in range(n):
        x1, y1, x2, y2 = xyxy[i]
        d = Detection2D()
        d.header = measured if measured is not None else header
        d.bbox.center.position.x = float((x1 + x2) * 0.5)
        d.bbox.center.position.y = float((y1 + y2) * 0.5)
        d.bbox.size_x = float(x2 - x1)
        d.bbox.size_y = float(y2 - y1)
        hyp = ObjectHypothesisWithPose()
        if class_names is not None:
            hyp.hypothesis.class_id = str(class_names[i])
        elif names is not None and int(class_ids[i]) in names:
            hyp.hypothesis.class_id = str(names[int(class_ids[i])])
        else:
            hyp.hypothesis.class_id = str(int(class_ids[i]))
        hyp.hypothesis.score = float(conf[i])
        d.results.append(hyp)
        if track_ids is not None:
            d.id = str(int(track_ids[i]))
        elif stages is not None:
            d.id = STAGE_NAMES.get(int(stages[i]), '')
        detections.append(d)
    out.detections = detections
    return out


def msg_to_detections(msg: Detection2DArray,
                      class_index: Optional[Mapping[str, int]] = None,
                      stages: bool = False) -> sv.Detections:
    """sv.Detections (xyxy, confidence, class_id, data['class_name']) from a Detection2DArray.

    Boxes with non-finite or negative sizes are dropped; `class_index` maps names to ids (new
    names get new ids and are added to it when it is a dict). With `stages`, data['stage']
    holds each box's cascade stage read from Detection2D.id (unknown: quick).
    """
    rows, scores, names, stage = [], [], [], []
    for d in msg.detections:
        cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
        w, h = d.bbox.size_x, d.bbox.size_y
        corners = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if not all(math.isfinite(v) for v in corners) or not w >= 0 or not h >= 0:
            continue
        if d.results:
            best = max(d.results, key=lambda r: r.hypothesis.score)
            score, name = best.hypothesis.score, best.hypothesis.class_id
        else:
            score, name = 1.0, ''
        if not math.isfinite(score):
            continue
        rows.append(corners)
        scores.append(min(max(score, 0.0), 1.0))
        names.append(name)
        stage.append(_STAGE_CODES.get(d.id, QUICK))
    if not rows:
        out = sv.Detections.empty()
        if stages:
            out.data['stage'] = np.empty(0, dtype=np.int64)
        return out
    if class_index is None:
        class_index = {}
    ids = []
    for name in names:
        if name not in class_index and isinstance(class_index, dict):
            class_index[name] = len(class_index)
        ids.append(class_index.get(name, -1))
    data = {'class_name': np.array(names, dtype=object)}
    if stages:
        data['stage'] = np.array(stage, dtype=np.int64)
    return sv.Detections(xyxy=np.array(rows, dtype=np.float64),
                         confidence=np.array(scores, dtype=np.float32),
                         class_id=np.array(ids, dtype=int), data=data)


def label_info_msg(names: Mapping[int, str], threshold: float, header: Header) -> LabelInfo:
    """vision_msgs/LabelInfo: the model's class map (index -> name, by index) and the score
    threshold below which detections are not published."""
    msg = LabelInfo()
    msg.header = header
    msg.class_map = [VisionClass(class_id=int(i), class_name=str(names[i]))
                     for i in sorted(names)]
    msg.threshold = float(threshold)
    return msg
# CDR encapsulation kinds whose std_msgs/Header layout is plain: CDR (XCDR1) and PLAIN_CDR2,
# big and little endian (the low bit). Anything else is deserialised the ordinary way.
_PLAIN_CDR = (0x00, 0x01, 0x06, 0x07)


def header_from_cdr(data: bytes) -> Optional[Header]:
    """The std_msgs/Header a serialised message starts with (sensor_msgs/Image, CameraInfo, ...:
    a `raw=True` subscription's bytes), read without deserialising the rest (a CameraInfo
    costs ~0.25 ms in Python, its header a few microseconds). None when the bytes are not
    plain CDR."""
    if len(data) < 17 or data[0] != 0 or data[1] not in _PLAIN_CDR:
        return None
    order = '<' if data[1] & 1 else '>'
    sec, nanosec, length = struct.unpack_from(order + 'iII', data, 4)
    end = 16 + length
    if length == 0 or end > len(data) or data[end - 1] != 0:
        return None
    header = Header()
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    header.frame_id = bytes(data[16:end - 1]).decode('utf-8', errors='replace')
    return header


def raw_header(data: bytes, msg_type) -> Header:
    """The header of a `raw=True` subscription's message of `msg_type` (std_msgs/Header itself,
    or a message that starts with one): read from the bytes, or deserialised the ordinary way
    when they are not plain CDR."""
    header = header_from_cdr(data)
    if header is None:
        message = deserialize_message(data, msg_type)
        header = message if msg_type is Header else message.header
    return header


class RawImage:
    """The fields of a serialised sensor_msgs/Image, its pixels left where they are (`data` is
    a view of the received bytes): what image_to_bgr needs, without building an Image."""
    __slots__ = ('header', 'height', 'width', 'encoding', 'is_bigendian', 'step', 'data')


def image_from_cdr(data: bytes) -> Optional[RawImage]:
    """A sensor_msgs/Image from a `raw=True` subscription's bytes, its pixels not copied:
    deserialising a 640x480 image into a message copies 0.9 MB into Python objects, for every
    frame, also those the detector then drops. None when the bytes are not plain CDR or do not
    hold a whole Image."""
    header = header_from_cdr(data)
    if header is None:
        return None
    order = '<' if data[1] & 1 else '>'
    try:
        pos = 16 + struct.unpack_from(order + 'I', data, 12)[0]   # after frame_id
        pos += -(pos - 4) % 4                                    # CDR aligns from byte 4
        height, width, length = struct.unpack_from(order + 'III', data, pos)
        pos += 12
        end = pos + length
        if length == 0 or data[end - 1] != 0:
            return None
        encoding = bytes(data[pos:end - 1]).decode('ascii', errors='replace')
        bigendian = data[end]
        pos = end + 1
        pos += -(pos - 4) % 4
        step, size = struct.unpack_from(order + 'II', data, pos)
        pos += 8
    except (struct.error, IndexError):
        return None
    if pos + size > len(data):
        return None
    image = RawImage()
    image.header, image.height, image.width = header, height, width
    image.encoding, image.is_bigendian, image.step = encoding, bigendian, step
    image.data = memoryview(data)[pos:pos + size]
    return image


def stamp_to_seconds(stamp) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def stamp_key(stamp) -> tuple:
    return (int(stamp.sec), int(stamp.nanosec))
