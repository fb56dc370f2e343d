"""Frame sources (V4L2 device, video file, network stream, GStreamer pipeline, synthetic scene)
and the capture loop that paces, retries and reports them. OpenCV frames are BGR throughout."""

import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Union

import cv2
import numpy as np

from edge_tracker.core.synthetic import SyntheticScene

KIND_DEVICE = 'device'
KIND_FILE = 'file'
KIND_STREAM = 'stream'
KIND_GSTREAMER = 'gstreamer'
KIND_SYNTHETIC = 'synthetic'

_URL_CREDENTIALS = re.compile(r'(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@')


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message says what to check."""


def redact(text: str) -> str:
    """Removes user:password from every URL in `text`, so logs never show credentials."""
    return _URL_CREDENTIALS.sub(r'\g<scheme>***@', text)


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    target: Union[int, str]
    seed: int = 0

    @property
    def display(self) -> str:
        return redact(str(self.target)) if self.kind != KIND_SYNTHETIC else 'synthetic'

    @property
    def is_live(self) -> bool:
        """Live sources deliver at their own pace; files and synthetic scenes are paced by us."""
        return self.kind in (KIND_DEVICE, KIND_STREAM, KIND_GSTREAMER)


def parse_source(text: str) -> SourceSpec:
    """Reads the camera node's `source` parameter.

    '0', '/dev/video0' -> device; 'synthetic' or 'synthetic:SEED' -> synthetic scene;
    'rtsp://', 'http(s)://', 'udp://', 'tcp://' -> stream; a string with ' ! ' -> GStreamer
    pipeline; anything else is a video file path.
    """
    s = str(text).strip()
    if not s:
        raise SourceError('source is empty: give a device index, /dev/videoN, a file, a URL, '
                          'a GStreamer pipeline or "synthetic"')
    if s == KIND_SYNTHETIC or s.startswith(KIND_SYNTHETIC + ':'):
        seed_text = s.partition(':')[2] or '0'
        if not seed_text.isdigit():
            raise SourceError(f'synthetic seed must be a non-negative integer, got {seed_text!r}')
        return SourceSpec(KIND_SYNTHETIC, KIND_SYNTHETIC, int(seed_text))
    if s.isdigit():
        return SourceSpec(KIND_DEVICE, int(s))
    if re.fullmatch(r'/dev/video\d+', s):
        return SourceSpec(KIND_DEVICE, s)
    if re.match(r'^(rtsp|rtsps|rtmp|http|https|udp|tcp)://', s, re.IGNORECASE):
        return SourceSpec(KIND_STREAM, s)
    if ' ! ' in s or s.endswith('appsink'):
        return SourceSpec(KIND_GSTREAMER, s)
    return SourceSpec(KIND_FILE, s)


class FrameSource:
    """Base of the sources: `read(into)` returns the next BGR frame or None when there is none,
    written into `into` when that array has the frame's shape (else into memory of its own)."""

    nominal_fps: float = 30.0
    ended: bool = False

    def read(self, into: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        raise NotImplementedError

    def release(self) -> None:
        pass


class SyntheticSource(FrameSource):
    def __init__(self, width: int, height: int, fps: float, seed: int) -> None:
        self.scene = SyntheticScene(width or 640, height or 480, seed=seed)
        self.nominal_fps = fps or 30.0
        self.index = 0
        self._buf: Optional[np.ndarray] = None

    def read(self, into: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        self._buf = self.scene.render(self.index, self._buf if into is None else into)
        self.index += 1
        return self._buf


class CaptureSource(FrameSource):
    """cv2.VideoCapture behind the device, file, stream and GStreamer kinds."""

    def __init__(self, spec: SourceSpec, loop: bool = False, open_timeout_s: float = 5.0,
                 decode_threads: int = 0) -> None:
        self.spec = spec
        self.loop = loop
        if spec.kind == KIND_FILE and not os.path.isfile(str(spec.target)):
            raise SourceError(f'video file not found: {spec.target}')
        if spec.kind == KIND_DEVICE and isinstance(spec.target, str) \
                and not os.path.exists(spec.target):
            raise SourceError(f'camera device {spec.target} does not exist (unplugged?)')
        self.cap = self._open(spec, open_timeout_s, decode_threads)
        if not self.cap.isOpened():
            self.cap.release()
            raise SourceError(f'cannot open {spec.kind} source {spec.display}')
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.nominal_fps = float(fps) if fps and 0 < fps < 1000 else 30.0
        self._buf: Optional[np.ndarray] = None
        self.frames_read = 0

    @staticmethod
    def _open(spec: SourceSpec, timeout_s: float, decode_threads: int = 0) -> cv2.VideoCapture:
        if spec.kind == KIND_GSTREAMER:
            return cv2.VideoCapture(str(spec.target), cv2.CAP_GSTREAMER)
        # FFmpeg decodes on one thread per core by default; for a frame at a time that costs
        # more CPU than it saves time (car-detection.mp4, 768x432 H.264: 1.30 ms of CPU per
        # frame on automatic threads, 0.74 ms on one).
        threads = getattr(cv2, 'CAP_PROP_N_THREADS', None)   # OpenCV >= 4.7
        extra = [threads, int(decode_threads)] if threads is not None and decode_threads > 0 \
            else []
        if spec.kind == KIND_STREAM:
            ms = int(timeout_s * 1000)
            return cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG,
                                    [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                     cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms] + extra)
        if spec.kind == KIND_FILE and extra:
            cap = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG, extra)
            if cap.isOpened():
                return cap
            cap.release()   # an OpenCV without FFmpeg: its own choice of backend below
        return cv2.VideoCapture(spec.target)

    def read(self, into: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        # OpenCV decodes into the array it is given when its shape and type fit.
        buf = self._buf if into is None else into
        ok, frame = self.cap.read(buf)
        if not ok and self.spec.kind == KIND_FILE and self.frames_read > 0:
            if not self.loop:
                self.ended = True
                return None
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read(buf)
        if not ok or frame is None:
            return None
        self._buf = frame
        self.frames_read += 1
        return frame

    def release(self) -> None:
        self.cap.release()


def open_source(spec: SourceSpec, width: int = 0, height: int = 0, fps: float = 0.0,
                loop: bool = False, decode_threads: int = 0) -> FrameSource:
    if spec.kind == KIND_SYNTHETIC:
        return SyntheticSource(width, height, fps, spec.seed)
    return CaptureSource(spec, loop=loop, decode_threads=decode_threads)


class Resizer:
    """Resizes into `out(shape)` when that gives an array of the output's shape and type (a
    message's own bytes), else into one reused buffer; a no-op when no size is requested or
    the frame already fits."""

    def __init__(self, width: int = 0, height: int = 0,
                 out: Optional[Callable[[tuple], Optional[np.ndarray]]] = None) -> None:
        self.size = (int(width), int(height)) if width > 0 and height > 0 else None
        self._out = out
        self._buf: Optional[np.ndarray] = None

    def needed(self, frame: np.ndarray) -> bool:
        return self.size is not None and (frame.shape[1], frame.shape[0]) != self.size

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if not self.needed(frame):
            return frame
        shape = (self.size[1], self.size[0]) + frame.shape[2:]
        dst = self._out(shape) if self._out is not None else None
        if dst is None or dst.shape != shape or dst.dtype != frame.dtype:
            if self._buf is None or self._buf.shape != shape:
                self._buf = np.empty(shape, frame.dtype)
            dst = self._buf
        cv2.resize(frame, self.size, dst=dst, interpolation=cv2.INTER_AREA)
        return dst


class CaptureLoop:
    """Opens a source, reads it at its pace (or `fps`), reopens with backoff when it fails.

    `on_frame(frame)` gets each frame (the buffer is reused: copy or serialise it before
    returning); `on_status(level, message)` hears about failures and recoveries, with level
    'ok', 'warn' or 'error'; `on_end()` is called once when a non-looping file ends.
    `frame_buffer(shape)`, when given, returns the array the next frame of that shape should
    be written into (a message's own bytes): the decoder, or the resize, then writes there,
    and publishing it needs no copy of the frame.
    """

    def __init__(self, spec: SourceSpec, on_frame: Callable[[np.ndarray], None],
                 on_status: Callable[[str, str], None], on_end: Callable[[], None],
                 width: int = 0, height: int = 0, fps: float = 0.0, loop: bool = False,
                 stall_timeout_s: float = 2.0, backoff_min_s: float = 0.5,
                 backoff_max_s: float = 8.0, decode_threads: int = 0,
                 opener: Callable[..., FrameSource] = open_source,
                 frame_buffer: Optional[Callable[[tuple], np.ndarray]] = None) -> None:
        self.spec = spec
        self._on_frame, self._on_status, self._on_end = on_frame, on_status, on_end
        self._width, self._height, self._fps, self._loop = width, height, fps, loop
        self._stall_timeout = stall_timeout_s
        self._backoff_min, self._backoff_max = backoff_min_s, backoff_max_s
        self._opener = opener
        self._decode_threads = decode_threads
        self._resize = Resizer(width, height, out=frame_buffer)
        self._frame_buffer = frame_buffer
        self._stop = threading.Event()
        self.state = 'starting'
        self.reconnects = 0  # times frames came back after they had stopped
        self._had_frames = False
        self.frames = 0
        self.fps = 0.0
        self._thread = threading.Thread(target=self._run, name='capture', daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        self._stop.set()
        if self._thread.ident is not None:  # never started: nothing to join
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _open_with_backoff(self) -> Optional[FrameSource]:
        delay = self._backoff_min
        while not self._stop.is_set():
            try:
                source = self._opener(self.spec, self._width, self._height, self._fps,
                                      self._loop, self._decode_threads)
                return source
            except SourceError as exc:
                self.state = 'retrying'
                self._on_status('error', f'{redact(str(exc))}; retrying in {delay:.1f} s')
            except Exception as exc:  # OpenCV raises cv2.error on some broken inputs
                self.state = 'retrying'
                self._on_status('error', f'cannot open {self.spec.display}: '
                                         f'{redact(str(exc))}; retrying in {delay:.1f} s')
            self._stop.wait(delay)
            delay = min(delay * 2.0, self._backoff_max)
        return None

    def _run(self) -> None:
        idle_delay = self._backoff_min
        while not self._stop.is_set():
            source = self._open_with_backoff()
            if source is None:
                return
            # 'streaming' (and the ok status) wait for the first frame: a source can open and
            # then deliver nothing (a corrupt file, a camera that accepts and stays silent).
            self.state = 'opening'
            frames_before = self.frames
            try:
                finished = self._stream(source)
            finally:
                source.release()
            if finished:
                self.state = 'ended'
                self._on_end()
                return
            if self.frames > frames_before:
                idle_delay = self._backoff_min
            elif not self._stop.is_set():
                # Opened but gave nothing: back off rather than reopen it in a loop.
                self._stop.wait(idle_delay)
                idle_delay = min(idle_delay * 2.0, self._backoff_max)

    def _stream(self, source: FrameSource) -> bool:
        """Reads until stopped (False), the source fails (False, after a status) or a
        non-looping file ends (True)."""
        self.fps = self._fps or source.nominal_fps
        period = 1.0 / self.fps
        paced = not self.spec.is_live or self._fps > 0
        deadline = time.monotonic()
        last_ok = time.monotonic()
        got = 0
        direct = None   # the shape frames come in at when they need no resize (None: unknown)
        while not self._stop.is_set():
            try:
                into = self._frame_buffer(direct) if direct is not None else None
                frame = source.read(into) if into is not None else source.read()
            except Exception as exc:  # a decoder error must not end the capture thread
                self.state = 'failed'
                self._on_status('error', f'reading {self.spec.display} failed: '
                                         f'{redact(str(exc))}; reopening')
                return False
            now = time.monotonic()
            if frame is None:
                if source.ended:
                    return True
                if now - last_ok > self._stall_timeout:
                    self.state = 'stalled'
                    if got == 0 and self.spec.kind == KIND_FILE:
                        self._on_status('error', f'cannot decode any frame of '
                                                 f'{self.spec.display} (corrupt file or '
                                                 'unsupported codec); retrying')
                    else:
                        self._on_status('warn', f'no frame from {self.spec.display} for '
                                                f'{now - last_ok:.1f} s; reopening')
                    return False
                self._stop.wait(0.01)
                continue
            if got == 0:
                if self._had_frames:
                    self.reconnects += 1
                self._had_frames = True
                self.state = 'streaming'
                self._on_status('ok', f'{self.spec.kind} source {self.spec.display} open')
            got += 1
            last_ok = now
            self.frames += 1
            # A frame needing no resize: the next one is decoded into the consumer's buffer.
            direct = None if self._frame_buffer is None or self._resize.needed(frame) \
                else frame.shape
            self._on_frame(self._resize(frame))
            if paced:
                deadline += period
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                elif delay < -period:
                    deadline = time.monotonic()  # fell behind: do not burst to catch up
        return False
