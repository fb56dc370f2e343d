"""Recordings and simulated time: old stamps, use_sim_time with /clock, and /clock jumping back
(a replay restarting) -- in the core and through the real nodes."""

import numpy as np
import supervision as sv
from diagnostic_msgs.msg import DiagnosticArray
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from vision_msgs.msg import Detection2DArray

from edge_tracker.conversions import ImageWriter, camera_info_msg, stamp_to_seconds
from edge_tracker.core.sequencer import LATE, MEASURED, PREDICTED, FrameSequencer
from edge_tracker.core.synthetic import SyntheticScene
from edge_tracker.core.tracking import Tracker
from edge_tracker.qos import image_qos, results_qos
from test_compressed import SHAPES_MODEL
from test_pipeline import diagnostic_values


def _dets(x):
    return sv.Detections(xyxy=np.array([[x, 100, x + 50, 150], [400, 300, 450, 350]], float),
                         confidence=np.array([0.9, 0.9]), class_id=np.array([0, 1]))


def test_tracker_restarts_on_a_jump_back_and_drops_small_reorders():
    tracker = Tracker(minimum_consecutive_frames=1, frame_rate=30.0, lost_track_buffer=30)
    assert tracker.rewind_s == 1.0
    for i in range(10):
        out = tracker.update(_dets(100 + 3 * i), 500.0 + i / 30)
    assert sorted(out.tracker_id) == [0, 1]
    tracker.update(_dets(200), 510.0)   # a new object far away: id 2 (and the others lost)
    # A reordered message, 0.5 s old: dropped, nothing changes.
    assert len(tracker.update(_dets(100), 509.5)) == 0
    assert (tracker.out_of_order, tracker.rewinds, tracker.last_stamp) == (1, 0, 510.0)
    # The replay starts again from its first stamp: a new timeline, ids from 0.
    out = tracker.update(_dets(100), 500.0)
    assert tracker.rewinds == 1 and tracker.last_stamp == 500.0
    assert sorted(out.tracker_id) == [0, 1]
    out = tracker.update(_dets(103), 500.0 + 1 / 30)
    assert sorted(out.tracker_id) == [0, 1]
    # A longer lost-track buffer widens what counts as reordering.
    assert Tracker(frame_rate=10.0, lost_track_buffer=150).rewind_s == 5.0   # 150 / 30 s


def test_sequencer_starts_over_when_stamps_jump_back():
    seq = FrameSequencer(min_wait_s=0.05, max_wait_s=0.2, rewind_s=1.0)
    for i in range(5):
        seq.frame(100.0 + i * 0.1, now=i * 0.1)
        seq.detections(100.0 + i * 0.1, f'a{i}', now=i * 0.1 + 0.01)
    assert [k for k, _, _ in seq.ready(now=1.0)] == [MEASURED] * 5
    # Late detections of an answered frame are still reported as late, not as a restart.
    seq.frame(100.5, now=1.0)
    assert seq.ready(now=1.5) == [(PREDICTED, 100.5, None)]
    assert seq.detections(100.5, 'late', now=1.6) == (LATE, 100.5, 'late')
    # The recording restarts at 10 s: its frames are answered, not ignored.
    seq.frame(10.0, now=2.0)
    seq.detections(10.0, 'b0', now=2.01)
    assert seq.ready(now=2.01) == [(MEASURED, 10.0, 'b0')]
    assert seq.rewinds == 1
    seq.skipped(10.1, now=2.1)
    assert seq.ready(now=2.1) == [(PREDICTED, 10.1, None)]


def test_sequencer_takes_detections_seconds_late_as_late_not_as_a_restart():
    # A detector slowed to ~3 s per frame (an overloaded machine) answers frames that went out
    # predicted long ago: more than rewind_s before the newest answered frame.
    seq = FrameSequencer(min_wait_s=0.05, max_wait_s=0.5, rewind_s=2.0)
    seq.in_flight(100.0, now=0.0)
    emitted = []
    for i in range(1, 100):                       # 3.3 s of frames at 30 Hz, all skipped
        seq.skipped(100.0 + i / 30, now=i / 30)
        emitted += [s for _, s, _ in seq.ready(now=i / 30)]
    emitted += [s for _, s, _ in seq.ready(now=3.4)]
    assert emitted[0] == 100.0 and len(emitted) == 100
    assert seq.detections(100.0, 'd0', now=3.4) == (LATE, 100.0, 'd0')
    assert seq.rewinds == 0
    seq.in_flight(103.4, now=3.4)
    seq.detections(103.4, 'd1', now=3.45)
    assert seq.ready(now=3.45) == [(MEASURED, 103.4, 'd1')]
    # A stamp never seen, as far back, is still a new timeline.
    seq.in_flight(100.52, now=3.5)
    assert seq.rewinds == 1


def _stamp(msg, seconds):
    msg.sec, msg.nanosec = int(seconds), int(round(seconds % 1 * 1e9)) % 1000000000
    return msg


class Replay:
    """What `ros2 bag play --clock` does: /clock, and image_raw + camera_info with the
    recording's stamps; the scene restarts with the stamps when a replay starts again."""

    def __init__(self, spinner):
        node = spinner.node
        self.spinner = spinner
        self.clock = node.create_publisher(Clock, '/clock', 10)
        self.images = node.create_publisher(Image, 'image_raw', image_qos('reliable', 5))
        self.infos = node.create_publisher(CameraInfo, 'camera_info', image_qos('reliable', 5))
        self.writer = ImageWriter()
        self.scene = SyntheticScene(seed=0)
        self.headers = []
        self.info_readers = []   # per frame played: how many read its camera_info

    def play(self, start_s, frames, fps=10.0, offset=0):
        for i in range(frames):
            t = start_s + i / fps
            for k in range(4):   # /clock faster than the frames, as rosbag2 publishes it
                msg = Clock()
                _stamp(msg.clock, t + k / (4 * fps))
                self.clock.publish(msg)
                if k == 0:
                    header = self.writer.msg.header
                    _stamp(header.stamp, t)
                    header.frame_id = 'rec'
                    image = self.writer.write(self.scene.render(offset + i), header)
                    self.images.publish(image)
                    self.infos.publish(camera_info_msg(640, 480, image.header))
                    self.headers.append((header.stamp.sec, header.stamp.nanosec))
                    self.info_readers.append(self.infos.get_subscription_count())
                self.spinner.spin_for(1 / (4 * fps))


def test_replay_with_sim_time_and_a_jump_back(spinner, processes):
    sim = {'use_sim_time': True}
    processes.start('detector_node', dict(SHAPES_MODEL, conf=0.4, frame_skip=2, **sim))
    processes.start('tracker_node', dict(sim))
    tracks = spinner.collect(Detection2DArray, 'tracks', results_qos())
    diags = spinner.collect(DiagnosticArray, '/diagnostics')
    replay = Replay(spinner)
    # Diagnostics come without any /clock (machine-time timers): the nodes are up.
    spinner.until(lambda: diagnostic_values(diags, 'detector') is not None
                  and diagnostic_values(diags, 'tracker') is not None, 120,
                  'both nodes up, their diagnostics published before any /clock')
    spinner.until(lambda: replay.images.get_subscription_count() >= 1
                  and spinner.node.count_subscribers('detections/in_flight') >= 1, 20,
                  'the nodes to subscribe')

    # A recording from long ago (stamps around 1000 s after the epoch).
    replay.play(1000.0, 40)
    # The tracker's frame clock is the detector's announcements once they come: camera_info
    # goes unread (it is read while none come: before the first frame, or the detector gone).
    assert replay.info_readers[-20:] == [0] * 20, replay.info_readers
    spinner.until(lambda: len(tracks) >= 35, 30, 'tracks of the replayed frames')
    first = [m for m in tracks if stamp_to_seconds(m.header.stamp) >= 1000.0]
    keys = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in first}
    assert keys <= set(replay.headers), 'tracks stamped with something other than the images'
    assert all(m.header.frame_id == 'rec' for m in first)
    boxes = [d for m in first for d in m.detections]
    assert boxes, 'no tracks from the replayed images'
    # frame_skip 2: every other frame is predicted, in stamp time, still with boxes.
    predicted = [m for m in first if any(d.header.stamp != m.header.stamp for d in m.detections)]
    assert predicted
    ids_before = {int(d.id) for d in boxes}

    values = diagnostic_values(diags, 'detector')
    # Stamp age against /clock: milliseconds, not the decades since 1000 s after the epoch.
    assert 0 < float(values['stamp_age_mean_ms']) < 5000, values['stamp_age_mean_ms']
    assert float(values['input_rate_hz']) > 0
    tracker = diagnostic_values(diags, 'tracker')
    assert 3 < float(tracker['output_rate_hz']) < 20, tracker['output_rate_hz']
    stamps = [stamp_to_seconds(a.header.stamp) for a in diags[-3:]]
    assert all(999.0 < s < 1010.0 for s in stamps), f'diagnostics stamped {stamps}, not /clock'

    # The replay starts over: /clock and the stamps jump back 1000 s -> 500 s.
    n0 = len(tracks)
    replay.play(500.0, 40)
    spinner.until(lambda: len([m for m in tracks[n0:] if stamp_to_seconds(m.header.stamp) < 600])
                  >= 35, 30, 'tracks after /clock jumped back')
    after = [m for m in tracks[n0:] if stamp_to_seconds(m.header.stamp) < 600]
    assert {(m.header.stamp.sec, m.header.stamp.nanosec) for m in after} <= set(replay.headers)
    later_boxes = [d for m in after[10:] for d in m.detections]
    assert later_boxes, 'nothing tracked after the jump back'
    # The tracks restarted: the same scene gets the same ids again, from 0.
    assert min(int(d.id) for d in later_boxes) == 0
    assert {int(d.id) for d in later_boxes} <= ids_before | set(range(len(ids_before) + 2))
    spinner.spin_for(1.5)
    tracker = diagnostic_values(diags, 'tracker')
    assert int(tracker['rewinds']) >= 1
    assert int(tracker['out_of_order_dropped']) <= 3
