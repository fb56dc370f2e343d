"""Compressed images (image_raw/compressed, sensor_msgs/CompressedImage) as real processes:
the camera encodes only while subscribed; detector and tracker take them with transport:=compressed."""

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from conftest import REPO
from edge_tracker.conversions import compressed_to_bgr
from edge_tracker.qos import image_qos, results_qos
from test_pipeline import diagnostic_values, header_key

# The project's model, trained on the synthetic scenes: real boxes, hence real tracks.
SHAPES_MODEL = {'model': str(REPO / 'models' / 'edge_tracker_shapes.pt'), 'imgsz': 320,
                'threads': 1}


def _subscribers(spinner, topic, node_name):
    return [i for i in spinner.node.get_subscriptions_info_by_topic(topic)
            if i.node_name == node_name]


def test_camera_encodes_only_while_someone_subscribes(spinner, processes):
    processes.start('camera_node', {'source': 'synthetic', 'fps': 15.0, 'jpeg_quality': 70},
                    namespace='/cam')
    diags = spinner.collect(DiagnosticArray, '/diagnostics')

    def camera():
        return diagnostic_values(diags, 'camera')

    spinner.until(lambda: camera() is not None and int(camera()['frames']) > 10, 30,
                  'the camera streaming')
    assert int(camera()['compressed_frames']) == 0, 'encoded with nobody subscribed'

    compressed = spinner.collect(CompressedImage, '/cam/image_raw/compressed', image_qos())
    raw = spinner.collect(Image, '/cam/image_raw', image_qos())
    spinner.until(lambda: len(compressed) >= 5 and len(raw) >= 5, 20, 'compressed frames')
    msg = compressed[-1]
    assert msg.format == 'bgr8; jpeg compressed bgr8'
    frame = compressed_to_bgr(msg)
    assert frame.shape == (480, 640, 3)
    # Same frames, same stamps as image_raw.
    assert header_key(msg.header) in {header_key(m.header) for m in raw} or \
        header_key(compressed[-2].header) in {header_key(m.header) for m in raw}
    spinner.until(lambda: int(camera()['compressed_frames']) > 0, 5, 'the count in diagnostics')

    # Unsubscribed: encoding stops.
    for sub in list(spinner.node.subscriptions):
        if sub.topic_name == '/cam/image_raw/compressed':
            spinner.node.destroy_subscription(sub)
    spinner.spin_for(1.5)  # the camera sees the subscriber leave
    n0 = int(camera()['compressed_frames'])
    frames0 = int(camera()['frames'])
    spinner.until(lambda: int(camera()['frames']) > frames0 + 20, 20, 'more frames')
    assert int(camera()['compressed_frames']) == n0, 'kept encoding after the subscriber left'


def test_compressed_images_through_detector_and_tracker(spinner, processes):
    processes.start('camera_node', {'source': 'synthetic', 'fps': 10.0, 'frame_id': 'cam0'})
    processes.start('detector_node', dict(SHAPES_MODEL, transport='compressed', conf=0.4))
    processes.start('tracker_node', {'transport': 'compressed'})
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    detections = spinner.collect(Detection2DArray, 'detections', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    spinner.until(lambda: sum(len(m.detections) > 0 for m in tracks) >= 5, 120,
                  'tracks with boxes from compressed images (model load included)')

    # The detector takes the compressed stream, not the raw one.
    assert len(_subscribers(spinner, '/image_raw/compressed', 'detector')) == 1
    assert _subscribers(spinner, '/image_raw', 'detector') == []
    assert sum(len(m.detections) for m in detections) > 0
    boxes = [d for m in tracks for d in m.detections]
    assert {d.results[0].hypothesis.class_id for d in boxes} <= {'circle', 'square', 'triangle'}
    assert all(d.id != '' for d in boxes)
    assert all(m.header.frame_id == 'cam0' for m in tracks)
    spinner.until(lambda: diagnostic_values(diags, 'detector') is not None, 10,
                  'detector diagnostics')
    values = diagnostic_values(diags, 'detector')
    assert int(values['bad_images']) == 0 and int(values['inferred_frames']) > 0

    # annotated_image is drawn on the decoded compressed frames, with their stamps.
    assert _subscribers(spinner, '/image_raw/compressed', 'tracker') == []
    annotated = spinner.collect(Image, 'annotated_image', image_qos())
    spinner.until(lambda: len(annotated) >= 3, 30, 'annotated_image from compressed frames')
    assert len(_subscribers(spinner, '/image_raw/compressed', 'tracker')) == 1
    assert _subscribers(spinner, '/image_raw', 'tracker') == []
    track_stamps = {header_key(m.header) for m in tracks}
    spinner.spin_for(0.5)
    track_stamps |= {header_key(m.header) for m in tracks}
    assert all(header_key(m.header) in track_stamps for m in annotated)
    assert (annotated[0].encoding, annotated[0].width, annotated[0].height) == ('bgr8', 640, 480)
