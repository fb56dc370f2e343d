"""A worker's model in a process of its own (core/inference_process.py): the same detections as
in this process, live option changes, a restart after the child dies, no child left behind;
and the automatic isolation choice. (Images read in place from their serialised bytes and the
malloc settings are in test_conversions.py, which also runs on Jazzy.)"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from edge_tracker.core.detector import Detector, ModelError
from edge_tracker.core.inference_process import InferenceProcessError, RemoteDetector
from edge_tracker.core.latest import use_processes
from edge_tracker.core.synthetic import SyntheticScene
from conftest import REPO

SPEC = dict(model=str(REPO / 'models' / 'edge_tracker_shapes.pt'), imgsz=320, threads=1,
            device='cpu')


def _gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(f'/proc/{pid}/stat') as f:
                if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    return True   # ended, not yet reaped
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def _children_of_test():
    with open(f'/proc/{os.getpid()}/task/{os.getpid()}/children') as f:
        return [int(c) for c in f.read().split()]


@pytest.fixture(scope='module')
def frames():
    scene = SyntheticScene(640, 480, seed=3, num_objects=6)
    return [scene.render(i).copy() for i in range(0, 40, 4)]


@pytest.fixture(scope='module')
def local():
    return Detector(**SPEC)


def test_the_same_detections_as_in_this_process(frames, local):
    remote = RemoteDetector(SPEC)
    try:
        assert remote.names == local.names and remote.backend == local.backend == 'pt'
        assert remote.pid != os.getpid() and not _gone(remote.pid, 0.1)
        total = 0
        for frame in frames + [frames[0][:240, :320]]:   # a smaller frame reuses the buffer
            a, b = remote.detect(frame), local.detect(frame)
            assert len(a) == len(b)
            assert np.allclose(a.xyxy, b.xyxy, atol=1e-3)
            assert np.array_equal(a.class_id, b.class_id)
            total += len(a)
        assert total > 20, 'the scene must give boxes for the comparison to mean anything'
        big = np.ascontiguousarray(np.tile(frames[1], (2, 2, 1)))   # the buffer grows
        assert len(remote.detect(big)) == len(local.detect(big))
        many = remote.detect_many(frames[:3])
        assert [len(d) for d in many] == [len(d) for d in local.detect_many(frames[:3])]
        assert remote.cpu_s > 0, 'the child reports the CPU its inferences used'
        # Options apply from the next frame on, as Detector.set_options does in process.
        remote.set_options(conf=0.99)
        assert len(remote.detect(frames[0])) < len(local.detect(frames[0]))
        remote.set_options(conf=0.25, classes=[1])
        assert set(remote.detect(frames[0]).class_id) <= {1}
    finally:
        remote.close()
    assert _gone(remote.pid)
    with pytest.raises(InferenceProcessError):
        remote.detect(frames[0])


def test_a_fallback_shares_the_process_and_a_child_that_died_comes_back_with_both(
        frames, local):
    remote = RemoteDetector(SPEC, log=lambda text: None)
    try:
        before = _children_of_test()
        assert remote.pid in before
        fallback = remote.sibling(dict(SPEC, imgsz=160))
        assert _children_of_test() == before, 'the fallback must not start another process'
        small = Detector(**dict(SPEC, imgsz=160))
        assert fallback.names == remote.names
        for frame in frames[:3]:
            assert len(fallback.detect(frame)) == len(small.detect(frame))
        assert fallback.cpu_s > 0
        remote.set_options(classes=[0])
        remote.detect(frames[0])
        first = remote.pid
        os.kill(first, signal.SIGKILL)
        assert _gone(first)
        with pytest.raises(InferenceProcessError):
            remote.detect(frames[0])   # the frame in flight when it died is lost...
        dets = remote.detect(frames[0])   # ...the next one starts a new child
        assert remote.restarts == 1 and remote.pid != first
        assert set(dets.class_id) <= {0}, 'the options survive the restart'
        local.set_options(classes=[0])
        assert len(dets) == len(local.detect(frames[0]))
        # The fallback was loaded again in the new process.
        assert len(fallback.detect(frames[1])) == len(small.detect(frames[1]))
    finally:
        local.set_options(classes=None)
        remote.close()


def test_a_model_that_cannot_load_is_a_configuration_error():
    with pytest.raises(ModelError, match='not found'):
        RemoteDetector(dict(SPEC, model=str(REPO / 'models' / 'missing.pt')))


PARENT = '''
import sys, time
from edge_tracker.core.inference_process import RemoteDetector
remote = RemoteDetector(dict(model=sys.argv[1], imgsz=320, threads=1, device='cpu'))
print(remote.pid, flush=True)
time.sleep(60)
'''


def test_the_child_dies_with_its_parent():
    parent = subprocess.Popen([sys.executable, '-c', PARENT, SPEC['model']],
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert not _gone(child, 0.2)
        parent.kill()   # no clean-up runs in the parent
        parent.wait(5)
        assert _gone(child), 'the inference process outlived its parent'
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)


def test_processes_for_several_cpu_workers_threads_otherwise():
    assert use_processes('auto', 2, 'pt')
    assert use_processes('auto', 4, 'openvino', 'cpu')
    assert not use_processes('auto', 1, 'pt')                 # nothing to contend with
    assert not use_processes('auto', 2, 'engine', '0')        # one accelerator
    assert not use_processes('auto', 2, 'pt', 'cuda:0')
    assert not use_processes('auto', 2, 'edgetpu')
    assert use_processes('process', 1, 'pt') and not use_processes('thread', 4, 'pt')
    with pytest.raises(ValueError):
        use_processes('fork', 2, 'pt')
