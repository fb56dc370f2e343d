"""The conversion module: images in every supported encoding, refusals, detections both ways."""

import array
import re
import sys

import cv2
import numpy as np
import pytest
import supervision as sv
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from edge_tracker.conversions import (CompressedWriter, ImageError, ImageWriter,
                                      compressed_to_bgr, detections_to_msg, image_to_bgr,
                                      image_transport, msg_to_detections, transport_topic)


def make_image(pixels: np.ndarray, encoding: str, step_pad: int = 0, bigendian=False) -> Image:
    msg = Image()
    msg.height, msg.width = pixels.shape[:2]
    row = pixels[0].nbytes
    msg.step = row + step_pad
    data = np.zeros((msg.height, msg.step), np.uint8)
    raw = pixels.astype(pixels.dtype.newbyteorder('>' if bigendian else '<'))
    data[:, :row] = raw.view(np.uint8).reshape(msg.height, row)
    msg.data = array.array('B', data.tobytes())
    msg.encoding = encoding
    msg.is_bigendian = int(bigendian)
    return msg


BGR = np.array([[[10, 20, 30], [40, 50, 60]], [[70, 80, 90], [100, 110, 120]]], np.uint8)


@pytest.mark.parametrize('encoding, pixels', [
    ('bgr8', BGR),
    ('rgb8', BGR[..., ::-1]),
    ('bgra8', np.dstack([BGR, np.full(BGR.shape[:2], 255, np.uint8)])),
    ('rgba8', np.dstack([BGR[..., ::-1], np.full(BGR.shape[:2], 255, np.uint8)])),
    ('bgr16', BGR.astype(np.uint16) << 8),
])
def test_colour_encodings_come_out_bgr(encoding, pixels):
    out = image_to_bgr(make_image(np.ascontiguousarray(pixels), encoding))
    np.testing.assert_array_equal(out, BGR)


def test_mono_and_16_bit_big_endian_and_row_padding():
    gray = np.array([[0, 128], [200, 255]], np.uint8)
    out = image_to_bgr(make_image(gray, 'mono8', step_pad=6))
    np.testing.assert_array_equal(out[..., 0], gray)
    np.testing.assert_array_equal(out[..., 2], gray)
    deep = (gray.astype(np.uint16) << 8) | 0x7F
    out16 = image_to_bgr(make_image(deep, 'mono16', bigendian=True))
    np.testing.assert_array_equal(out16[..., 1], gray)


@pytest.mark.parametrize('mutate, words', [
    (lambda m: setattr(m, 'encoding', 'yuv422'), 'unsupported encoding'),
    (lambda m: setattr(m, 'encoding', 'jpeg'), 'unsupported encoding'),
    (lambda m: setattr(m, 'height', 0), 'empty image'),
    (lambda m: setattr(m, 'step', 3), 'step'),
    (lambda m: setattr(m, 'data', array.array('B', b'\x00' * 5)), 'expected height*step'),
])
def test_unusable_images_are_refused_with_a_reason(mutate, words):
    msg = make_image(BGR, 'bgr8')
    mutate(msg)
    with pytest.raises(ImageError, match=re.escape(words)):
        image_to_bgr(msg)


def test_image_writer_round_trip_reuses_its_buffer():
    writer = ImageWriter()
    header = Header(frame_id='cam')
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    msg = writer.write(frame, header)
    first_buffer = msg.data
    np.testing.assert_array_equal(image_to_bgr(msg), frame)
    frame2 = frame[::-1].copy()
    msg2 = writer.write(frame2, header)
    assert msg2.data is first_buffer
    np.testing.assert_array_equal(image_to_bgr(msg2), frame2)
    assert (msg2.encoding, msg2.step, msg2.header.frame_id) == ('bgr8', 64 * 3, 'cam')
    with pytest.raises(ImageError):
        writer.write(frame[..., 0], header)


@pytest.mark.parametrize('size', [(64, 48), (80, 40)])
def test_capture_writes_frames_into_the_message_without_a_copy(tmp_path, size):
    """A camera's frames are decoded (native size) or resized straight into its Image's bytes:
    what goes out is the frame, and no copy was made of it."""
    from edge_tracker.core.sources import CaptureLoop, parse_source
    path = str(tmp_path / 'clip.avi')
    out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 30.0, (64, 48))
    rng = np.random.default_rng(3)
    for _ in range(6):
        out.write(cv2.GaussianBlur(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), (5, 5), 0))
    out.release()
    expected = []
    cap = cv2.VideoCapture(path)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        expected.append(frame if size == (64, 48) else
                        cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    cap.release()
    assert len(expected) == 6
    writer = ImageWriter()
    sent, in_place = [], []

    def on_frame(frame):
        view = writer.frame_buffer(frame.shape)
        in_place.append(view is not None and view.ctypes.data == frame.ctypes.data)
        msg = writer.write(frame, Header())
        sent.append(image_to_bgr(msg).copy())
    loop = CaptureLoop(parse_source(path), on_frame=on_frame, on_status=lambda *a: None,
                       on_end=lambda: None, width=size[0], height=size[1], fps=200.0,
                       frame_buffer=writer.frame_buffer, decode_threads=1)
    loop.start()
    assert loop._thread.join(10.0) is None and not loop._thread.is_alive()
    assert len(sent) == 6
    for got, want in zip(sent, expected):
        np.testing.assert_array_equal(got, want)
    # The first frame comes before its size is known; every later one is written in place.
    assert all(in_place[1:]), in_place


def _scene(h=48, w=64):
    """Smooth colour gradients (JPEG keeps them within a few levels) with a sharp square."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.dstack([x * 255 // w, y * 255 // h, np.full((h, w), 40)]).astype(np.uint8)
    img[10:30, 20:40] = (0, 0, 255)
    return img


def _compressed(data: bytes, fmt: str) -> CompressedImage:
    msg = CompressedImage()
    msg.format = fmt
    msg.data = array.array('B', data)
    return msg


@pytest.mark.parametrize('ext, fmt, exact', [
    ('.png', 'png', True),
    ('.png', 'bgr8; png compressed bgr8', True),
    ('.jpg', 'jpeg', False),
    # image_transport encodes colour as BGR whatever the source encoding was.
    ('.jpg', 'rgb8; jpeg compressed bgr8', False),
])
def test_compressed_images_decode_to_bgr(ext, fmt, exact):
    img = _scene()
    ok, buf = cv2.imencode(ext, img)
    assert ok
    out = compressed_to_bgr(_compressed(buf.tobytes(), fmt))
    assert out.shape == img.shape and out.dtype == np.uint8
    if exact:
        np.testing.assert_array_equal(out, img)
    else:
        # Red stays red: the channels were not swapped.
        assert np.abs(out.astype(int) - img).mean() < 4
        assert np.abs(out[20, 30].astype(int) - (0, 0, 255)).max() < 12


def test_grey_and_16_bit_png_come_out_as_8_bit_bgr():
    grey = np.array([[0, 128], [200, 255]], np.uint8)
    out = compressed_to_bgr(_compressed(cv2.imencode('.png', grey)[1].tobytes(), 'mono8; png'))
    np.testing.assert_array_equal(out[..., 2], grey)
    deep = grey.astype(np.uint16) << 8
    out16 = compressed_to_bgr(_compressed(cv2.imencode('.png', deep)[1].tobytes(),
                                          'mono16; png compressed mono16'))
    assert out16.dtype == np.uint8
    np.testing.assert_array_equal(out16[..., 0], grey)


@pytest.mark.parametrize('data, fmt, words', [
    (b'', 'jpeg', 'no data'),
    (b'not an image at all', 'jpeg', 'cannot decode 19 bytes'),
    (cv2.imencode('.png', np.zeros((4, 4), np.uint16))[1].tobytes(),
     '16UC1; compressedDepth png', 'depth image'),
])
def test_undecodable_compressed_images_are_refused_with_a_reason(data, fmt, words):
    with pytest.raises(ImageError, match=re.escape(words)):
        compressed_to_bgr(_compressed(data, fmt))


def test_compressed_writer_names_its_format_as_image_transport_does():
    img = _scene()
    msg = CompressedWriter().write(img, Header(frame_id='cam'), quality=90)
    assert msg.format == 'bgr8; jpeg compressed bgr8' and msg.header.frame_id == 'cam'
    assert bytes(msg.data[:2]) == b'\xff\xd8'  # a JPEG stream
    assert np.abs(compressed_to_bgr(msg).astype(int) - img).mean() < 4
    small = len(CompressedWriter().write(img, Header(), quality=10).data)
    assert small < len(msg.data), 'quality must change the size'


def test_transport_topics_follow_image_transport_naming():
    class Resolver:  # a node whose namespace and remapping moved image_raw
        def resolve_topic_name(self, name):
            return '/front/cam/image'
    assert image_transport(Resolver(), 'image_raw', 'raw')[:2] == (Image, 'image_raw')
    msg_type, topic, decode = image_transport(Resolver(), 'image_raw', 'compressed')
    assert (msg_type, topic, decode) == (CompressedImage, '/front/cam/image/compressed',
                                         compressed_to_bgr)
    assert transport_topic(object(), 'image_raw', 'compressed') == 'image_raw/compressed'
    with pytest.raises(ValueError, match='theora'):
        image_transport(Resolver(), 'image_raw', 'theora')


def test_detections_to_msg_uses_vision_msgs_4_layout():
    dets = sv.Detections(xyxy=np.array([[10, 20, 50, 100]], np.float32),
                         confidence=np.array([0.75], np.float32), class_id=np.array([2]))
    dets.tracker_id = np.array([7])
    header = Header(frame_id='cam')
    header.stamp.sec, header.stamp.nanosec = 5, 500
    msg = detections_to_msg(dets, header, names={2: 'car'})
    d = msg.detections[0]
    assert msg.header.stamp.nanosec == 500 and d.header.frame_id == 'cam'
    assert (d.bbox.center.position.x, d.bbox.center.position.y) == (30.0, 60.0)
    assert (d.bbox.size_x, d.bbox.size_y) == (40.0, 80.0)
    assert d.results[0].hypothesis.class_id == 'car'
    assert d.results[0].hypothesis.score == pytest.approx(0.75)
    assert d.id == '7'
    assert detections_to_msg(sv.Detections.empty(), header).detections == []


def test_msg_to_detections_drops_broken_boxes():
    dets = sv.Detections(xyxy=np.array([[0, 0, 10, 10], [5, 5, 25, 45]], np.float32),
                         confidence=np.array([0.5, 0.9], np.float32), class_id=np.array([0, 1]),
                         data={'class_name': np.array(['a', 'b'])})
    msg = detections_to_msg(dets, Header())
    msg.detections[0].bbox.size_x = float('nan')
    back = msg_to_detections(msg, {'b': 4})
    assert len(back) == 1
    np.testing.assert_allclose(back.xyxy[0], [5, 5, 25, 45])
    assert back.class_id[0] == 4 and back.data['class_name'][0] == 'b'


finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=32)
sizes = st.floats(min_value=0.0, max_value=1e4, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(finite, finite, sizes, sizes,
                          st.floats(0, 1, width=32), st.text(max_size=8)), max_size=20))
def test_detections_survive_a_round_trip(rows):
    msg = Detection2DArray()
    for cx, cy, w, h, score, name in rows:
        dets = sv.Detections(xyxy=np.array([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]],
                                           np.float64),
                             confidence=np.array([score]), class_id=np.array([0]),
                             data={'class_name': np.array([name], dtype=object)})
        msg.detections.extend(detections_to_msg(dets, Header()).detections)
    back = msg_to_detections(msg)
    assert len(back) == len(rows)
    if rows:
        got_centres = (back.xyxy[:, :2] + back.xyxy[:, 2:]) / 2
        want = np.array([[r[0], r[1]] for r in rows])
        np.testing.assert_allclose(got_centres, want, rtol=1e-4, atol=1e-2)
        assert list(back.data['class_name']) == [r[5] for r in rows]


anything = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(anything, anything, anything, anything, anything), max_size=10))
def test_any_numbers_in_a_message_give_only_finite_non_negative_boxes(rows):
    msg = Detection2DArray()
    for cx, cy, w, h, score in rows:
        d = Detection2D()
        d.bbox.center.position.x, d.bbox.center.position.y = cx, cy
        d.bbox.size_x, d.bbox.size_y = w, h
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.score = score
        d.results.append(hyp)
        msg.detections.append(d)
    back = msg_to_detections(msg)
    assert np.isfinite(back.xyxy).all() or len(back) == 0
    if len(back):
        assert (back.xyxy[:, 2] >= back.xyxy[:, 0]).all()
        assert ((back.confidence >= 0) & (back.confidence <= 1)).all()


def test_images_are_read_in_place_from_their_serialised_bytes():
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    from edge_tracker.conversions import image_from_cdr, image_to_bgr
    for frame_id in ('', 'c', 'cam', 'camera_optical_frame'):   # every alignment after it
        for encoding, channels, itemsize in (('bgr8', 3, 1), ('rgb8', 3, 1), ('mono16', 1, 2)):
            msg = Image()
            msg.header.frame_id = frame_id
            msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 345
            msg.height, msg.width, msg.encoding = 3, 5, encoding
            msg.step = 5 * channels * itemsize + 2   # padded rows
            msg.data = np.arange(msg.step * 3, dtype=np.uint8).tobytes()
            data = serialize_message(msg)
            image = image_from_cdr(data)
            assert image is not None
            assert (image.header.frame_id, image.header.stamp.sec, image.header.stamp.nanosec,
                    image.height, image.width, image.encoding, image.step) == \
                (frame_id, 12, 345, 3, 5, encoding, msg.step)
            assert bytes(image.data) == bytes(msg.data)
            assert np.array_equal(image_to_bgr(image), image_to_bgr(msg))
    assert image_from_cdr(data[:-1]) is None                  # truncated
    assert image_from_cdr(b'\x00\x01\x00\x00' + bytes(40)) is None


def test_malloc_keeps_image_buffers_unless_the_user_tuned_it(monkeypatch):
    from edge_tracker.core.allocator import keep_image_buffers
    assert keep_image_buffers() is sys.platform.startswith('linux')
    monkeypatch.setenv('MALLOC_TRIM_THRESHOLD_', '1000')
    assert keep_image_buffers() is False
