"""Parallel inference without ROS: the automatic workers/threads rule, the newest-wins pool,
the sequencer's handling of frames in flight, and the transport rule every node applies."""

import threading
import time

import pytest

from edge_tracker.core.latest import InFlight, LatestPool, choose_workers
from edge_tracker.core.launch_plan import apply_fastdds_env
from edge_tracker.core.sequencer import LATE, MEASURED, PREDICTED, FrameSequencer


@pytest.mark.parametrize('cores, expected', [(1, (1, 1)), (2, (2, 1)), (4, (4, 1)),
                                             (8, (4, 2)), (16, (4, 4))])
def test_cpu_backends_fill_the_cores(cores, expected):
    for backend in ('pt', 'onnx', 'openvino', 'ncnn', 'tflite', 'torchscript', 'yaml'):
        workers, threads = choose_workers(cores, backend, 'cpu')
        assert (workers, threads) == expected, backend
        assert workers * threads == cores


@pytest.mark.parametrize('cores', [1, 2, 4, 8])
def test_single_accelerators_get_one_worker(cores):
    for backend, device in (('engine', '0'), ('edgetpu', 'cpu'), ('pt', 'cuda:0'), ('pt', '0')):
        workers, threads = choose_workers(cores, backend, device)
        assert workers == 1, (backend, device)
        assert threads == max(1, cores - 1)


def test_a_value_given_is_kept_and_the_other_fills_the_cores():
    assert choose_workers(8, 'pt', 'cpu', workers=2) == (2, 4)
    assert choose_workers(8, 'pt', 'cpu', threads=4) == (2, 4)
    assert choose_workers(4, 'pt', 'cpu', workers=2, threads=2) == (2, 2)   # the pi profile
    assert choose_workers(8, 'pt', 'cpu', workers=2, threads=2) == (2, 2)   # fewer: kept
    assert choose_workers(4, 'engine', '0', workers=2) == (2, 3)  # measured better: allowed

def test_cpu_threads_never_exceed_the_cores():
    # A profile written for a bigger board on a smaller one: the workers stay, their threads
    # shrink until workers x threads fits the cores (1 at least).
    assert choose_workers(2, 'pt', 'cpu', workers=2, threads=2) == (2, 1)   # pi on 2 cores
    assert choose_workers(4, 'pt', 'cpu', workers=3, threads=3) == (3, 1)
    assert choose_workers(2, 'pt', 'cpu', threads=4) == (1, 2)
    assert choose_workers(2, 'onnx', 'cpu', workers=4) == (4, 1)
    assert choose_workers(1, 'openvino', 'cpu', workers=1, threads=4) == (1, 1)
    # An accelerator's host threads are not inference threads: kept.
    assert choose_workers(2, 'engine', '0', workers=1, threads=4) == (1, 4)
    with pytest.raises(ValueError):
        choose_workers(4, 'pt', 'cpu', workers=-1)


def test_pool_runs_items_in_parallel_on_the_thread_that_initialised_each_worker():
    inits, seen, lock = {}, [], threading.Lock()

    def init(index):
        inits[index] = threading.get_ident()

    def work(index, item):
        assert threading.get_ident() == inits[index]   # the model's own thread
        time.sleep(0.2)
        with lock:
            seen.append((index, item))

    pool = LatestPool(work, workers=3, init=init)
    pool.wait_ready()
    t0 = time.monotonic()
    for item in range(3):
        pool.submit(item)
        time.sleep(0.02)   # each is taken by an idle worker before the next comes
    while pool.processed < 3 and time.monotonic() - t0 < 5:
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    assert sorted(item for _, item in seen) == [0, 1, 2]
    assert len({index for index, _ in seen}) == 3
    assert elapsed < 0.45, f'three 0.2 s items took {elapsed:.2f} s: not in parallel'
    assert pool.dropped == 0 and pool.stop()


def test_frames_in_flight_are_announced_only_before_something_newer_goes_out():
    flights = InFlight()
    sent = []

    def out(key):
        """Frame `key`'s message goes out: the in-flight notices sent before it."""
        notices = []
        flights.send(key, notices.append, lambda: sent.append(key))
        return notices
    # A frame that finishes before anything newer goes out is never announced.
    flights.taken(1, 'h1')
    assert out(1) == []
    # Two in flight; the newer finishes first: the older is announced before its detections,
    # once only, and not again before the next newer message.
    flights.taken(2, 'h2')
    flights.taken(3, 'h3')
    assert out(3) == ['h2']
    assert out(4) == []
    # A skip notice for a newer frame brings out every older frame in flight, oldest first.
    flights.taken(5, 'h5')
    flights.taken(6, 'h6')
    assert out(7) == ['h5', 'h6']
    assert out(2) == [] and out(5) == [] and out(6) == []
    assert len(flights) == 0 and flights.announced == 3
    # Nothing newer than a frame announces it.
    flights.taken(9, 'h9')
    assert out(8) == [] and out(9) == []
    assert sent == [1, 3, 4, 7, 2, 5, 6, 8, 9]


def test_pool_newest_wins_while_every_worker_is_busy():
    release = threading.Event()
    dropped, done = [], []

    def work(index, item):
        release.wait(5)
        done.append(item)

    pool = LatestPool(work, workers=2, on_drop=dropped.append)
    pool.wait_ready()
    pool.submit('a')
    time.sleep(0.05)
    pool.submit('b')
    time.sleep(0.05)
    assert pool.busy == [True, True]
    for item in ('c', 'd', 'e'):
        pool.submit(item)
    assert dropped == ['c', 'd'] and pool.dropped == 2   # only the newest waits
    release.set()
    t0 = time.monotonic()
    while pool.processed < 3 and time.monotonic() - t0 < 5:
        time.sleep(0.01)
    assert sorted(done) == ['a', 'b', 'e']
    assert pool.stop()


def test_pool_announces_takes_in_the_order_the_items_were_taken():
    announced, first_taken = [], threading.Event()

    def on_take(index, item):
        if item == 'a':
            first_taken.set()
            time.sleep(0.2)   # a slow announcement must not be overtaken by the next one
        announced.append(item)

    pool = LatestPool(lambda i, x: time.sleep(0.3), workers=2, on_take=on_take)
    pool.wait_ready()
    pool.submit('a')
    assert first_taken.wait(5)
    pool.submit('b')          # the other worker is idle and takes it while 'a' is announced
    t0 = time.monotonic()
    while pool.processed < 2 and time.monotonic() - t0 < 5:
        time.sleep(0.01)
    assert announced == ['a', 'b']
    assert pool.stop()


def test_pool_reports_the_first_init_failure_and_errors_with_their_item():
    def init(index):
        if index == 1:
            raise RuntimeError('no model for worker 1')
    pool = LatestPool(lambda i, x: None, workers=3, init=init)
    with pytest.raises(RuntimeError, match='worker 1'):
        pool.wait_ready()
    pool.stop()

    errors = []
    pool = LatestPool(lambda i, x: 1 / 0, workers=2, on_error=lambda e, x: errors.append(x))
    pool.wait_ready()
    pool.submit('frame')
    t0 = time.monotonic()
    while not errors and time.monotonic() - t0 < 5:
        time.sleep(0.01)
    assert errors == ['frame']
    pool.submit('next')   # still serving
    while len(errors) < 2 and time.monotonic() - t0 < 5:
        time.sleep(0.01)
    assert errors == ['frame', 'next'] and pool.stop()


def test_sequencer_waits_for_frames_in_flight_that_finish_out_of_order():
    seq = FrameSequencer(min_wait_s=0.05, max_wait_s=1.0)
    for i in range(4):
        seq.frame(i, now=i * 0.03)
    seq.in_flight(0, now=0.0)
    seq.in_flight(1, now=0.03)
    seq.skipped(2, now=0.07)
    seq.in_flight(3, now=0.09)
    seq.detections(1, 'd1', now=0.1)     # worker B finished first
    seq.detections(3, 'd3', now=0.2)
    assert seq.ready(now=0.3) == []      # 0 is in flight: neither newer results nor the wait
    seq.detections(0, 'd0', now=0.4)
    out = seq.ready(now=0.4)
    assert [(k, s) for k, s, _ in out] == [(MEASURED, 0), (MEASURED, 1), (PREDICTED, 2),
                                           (MEASURED, 3)]


def test_sequencer_without_camera_info_measures_every_inferred_frame():
    """Headers from the detector alone (no camera_info): the frame being inferred is known before
    newer dropped frames are, so it is measured rather than predicted."""
    seq = FrameSequencer(min_wait_s=0.05, max_wait_s=0.5)
    out = []
    now = 0.0
    for i in range(0, 30, 3):           # infer one, two arrive meanwhile and are dropped
        seq.in_flight(i, now)
        out += seq.ready(now)
        seq.skipped(i + 1, now + 0.02)
        out += seq.ready(now + 0.02)
        seq.skipped(i + 2, now + 0.04)
        out += seq.ready(now + 0.04)
        seq.detections(i, f'd{i}', now + 0.06)
        out += seq.ready(now + 0.06)
        now += 0.1
    out += seq.ready(now + 5)
    assert [s for _, s, _ in out] == list(range(30))
    assert [k for k, s, _ in out if s % 3 == 0] == [MEASURED] * 10


def test_sequencer_predicts_frames_passed_over_once_a_newer_one_is_in_flight():
    """The detector announces no newest-wins drop: a frame older than one in flight that is not
    in flight itself will never be inferred, so it is answered without waiting."""
    seq = FrameSequencer(min_wait_s=0.2, max_wait_s=1.0)
    for i in range(6):
        seq.frame(i, now=i * 0.01)
    seq.in_flight(0, now=0.0)
    seq.in_flight(3, now=0.04)           # 1 and 2 were passed over
    assert seq.ready(now=0.05) == []     # 0 is still being inferred
    seq.detections(0, 'd0', now=0.06)
    out = seq.ready(now=0.06)
    assert [(k, s) for k, s, _ in out] == [(MEASURED, 0), (PREDICTED, 1), (PREDICTED, 2)]
    seq.detections(3, 'd3', now=0.08)
    # 4 and 5 are newer than anything in flight: they wait (they may still be taken).
    assert [(k, s) for k, s, _ in seq.ready(now=0.08)] == [(MEASURED, 3)]
    seq.in_flight(5, now=0.09)
    assert [(k, s) for k, s, _ in seq.ready(now=0.09)] == [(PREDICTED, 4)]


def test_sequencer_gives_up_on_a_frame_in_flight_after_max_wait_and_on_failures():
    seq = FrameSequencer(min_wait_s=0.05, max_wait_s=0.5)
    seq.in_flight(1.0, now=0.0)
    seq.detections(2.0, 'd2', now=0.1)
    assert seq.ready(now=0.4) == []
    assert [k for k, _, _ in seq.ready(now=0.6)] == [PREDICTED, MEASURED]
    assert seq.detections(1.0, 'late', now=0.7) == (LATE, 1.0, 'late')
    seq.in_flight(3.0, now=1.0)
    seq.skipped(3.0, now=1.05)           # the inference failed: no detections will come
    assert seq.ready(now=1.05) == [(PREDICTED, 3.0, None)]


def test_every_node_process_applies_the_image_transport_profile_unless_the_user_chose():
    share = '/opt/share/edge_tracker'
    env = {}
    profile = share + '/config/fastdds_large_images.xml'
    assert apply_fastdds_env(share, env) == {'FASTDDS_DEFAULT_PROFILES_FILE': profile,
                                              'FASTRTPS_DEFAULT_PROFILES_FILE': profile}
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == env['FASTRTPS_DEFAULT_PROFILES_FILE'] == profile
    for chosen in ({'FASTDDS_DEFAULT_PROFILES_FILE': '/mine.xml'},
                   {'FASTRTPS_DEFAULT_PROFILES_FILE': '/mine.xml'},
                   {'FASTDDS_BUILTIN_TRANSPORTS': 'LARGE_DATA'},
                   {'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp'}):
        before = dict(chosen)
        assert apply_fastdds_env(share, chosen) == {} and chosen == before


def test_a_serialised_message_header_is_read_without_deserialising_the_rest():
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CameraInfo, Image

    from edge_tracker.conversions import header_from_cdr
    for msg in (CameraInfo(), Image()):
        for frame_id in ('camera', 'cäm/ü', 'x' * 37):
            msg.header.frame_id = frame_id
            msg.header.stamp.sec, msg.header.stamp.nanosec = -3, 999_999_999
            header = header_from_cdr(serialize_message(msg))
            assert header == msg.header
    data = bytearray(serialize_message(CameraInfo()))
    data[1] = 0x0b   # parameter-list CDR: not plain, left to the deserialiser
    assert header_from_cdr(bytes(data)) is None
    assert header_from_cdr(b'\x00\x01\x00\x00') is None


def test_sequencer_deadline_is_the_oldest_waiting_frames():
    seq = FrameSequencer(min_wait_s=0.05, max_wait_s=0.5)
    assert seq.next_deadline() is None
    seq.in_flight(1.0, now=10.0)
    seq.frame(2.0, now=10.1)
    assert seq.next_deadline() == 10.5          # in flight: max_wait_s
    seq.detections(1.0, 'd', now=10.2)
    assert seq.next_deadline() == 10.0          # answerable at once
    seq.ready(now=10.2)
    assert seq.next_deadline() == 10.1 + seq.wait_s
