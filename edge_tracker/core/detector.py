"""Ultralytics YOLO behind one small interface: BGR frame in, supervision Detections out.

Ultralytics picks the backend from the model path (.pt, .onnx, _openvino_model/, _ncnn_model/,
.engine, .tflite, _edgetpu.tflite, .torchscript, or a model .yaml for a random-init network).
Numpy frames handed to Ultralytics are taken as BGR and converted to RGB once inside its
pre-processing, which is the one conversion the pipeline does.
"""

import ctypes.util
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import supervision as sv

from edge_tracker.core.errors import ConfigurationError

# Path endings -> backend, for the checks made before Ultralytics is asked to load anything.
_FORMATS = (
    ('_edgetpu.tflite', 'edgetpu'), ('.tflite', 'tflite'), ('.engine', 'engine'),
    ('_openvino_model', 'openvino'), ('_ncnn_model', 'ncnn'), ('.onnx', 'onnx'),
    ('.torchscript', 'torchscript'), ('.yaml', 'yaml'), ('.yml', 'yaml'), ('.pt', 'pt'),
)


class ModelError(ConfigurationError):
    """The model cannot be used here; the message says why and what to do instead."""


def model_format(model: str) -> str:
    name = str(model).rstrip('/').lower()
    for ending, fmt in _FORMATS:
        if name.endswith(ending):
            return fmt
    raise ModelError(f'model {model!r}: unknown format; give a .pt, .onnx, .engine, .tflite, '
                     '_edgetpu.tflite, .torchscript file, an _openvino_model/ or _ncnn_model/ '
                     'folder, or a model .yaml')


def _cuda_available() -> bool:
    try:
        import torch
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def _no_cuda_message(model: str) -> str:
    return (f'{model} is a TensorRT engine, which needs an NVIDIA GPU with CUDA and TensorRT; '
            'none is available here. On a Jetson, check the JetPack install; elsewhere use the '
            '.pt, .onnx or an _openvino_model/ export of the same network.')


def edgetpu_runtime_available() -> bool:
    return ctypes.util.find_library('edgetpu') is not None or \
        any(os.path.exists(p) for p in ('/usr/lib/libedgetpu.so.1',
                                        '/usr/lib/x86_64-linux-gnu/libedgetpu.so.1',
                                        '/usr/lib/aarch64-linux-gnu/libedgetpu.so.1'))


def check_model(model: str, device: str = '') -> str:
    """Refuses, with the reason, a model this machine cannot run; returns its format."""
    fmt = model_format(model)
    path = Path(model)
    is_bare_name = path.name == str(model)
    if fmt == 'yaml':
        return fmt  # built from its definition (Ultralytics' own .yaml names need no file)
    # Before the file check: without the runtime even the right file cannot run, and the
    # runtime is what a user must install first.
    if fmt == 'edgetpu' and not edgetpu_runtime_available():
        raise ModelError(
            f'{model} is compiled for the Coral Edge TPU, but the Edge TPU runtime '
            '(libedgetpu.so.1, Debian package libedgetpu1-std) is not installed or no Coral '
            'device is attached. Install the runtime and plug in the device, or run the CPU '
            'int8 .tflite of the same model (the coral profile\'s fallback_model) as model.')
    if not path.exists():
        if fmt == 'pt' and is_bare_name:
            return fmt  # an official name such as yolov8n.pt: Ultralytics downloads it
        raise ModelError(f'model file not found: {model}')
    if path.is_dir() != (fmt in ('openvino', 'ncnn')):
        raise ModelError(f'model {model}: expected a {"folder" if path.is_file() else "file"}')
    if not os.access(model, os.R_OK):
        raise ModelError(f'model {model} is not readable (check its permissions)')
    if fmt == 'engine' and not _cuda_available():
        raise ModelError(_no_cuda_message(model))
    if fmt == 'engine' and str(device).lower() == 'cpu':
        raise ModelError(f'{model} is a TensorRT engine; it cannot run on device=cpu')
    return fmt


# Formats the detector can build from a sibling .pt when the requested file is missing.
_EXPORTS = {'engine': '.engine', 'onnx': '.onnx', 'openvino': '_openvino_model',
            'ncnn': '_ncnn_model', 'torchscript': '.torchscript'}


def find_model(model: str, search_dirs: Sequence[str] = ()) -> str:
    """`model` as given when it exists (or is absolute), else the first match in search_dirs."""
    if os.path.isabs(model) or os.path.exists(model):
        return model
    for folder in search_dirs:
        candidate = os.path.join(folder, model)
        if os.path.exists(candidate):
            return candidate
    return model


def cached_export_path(model: str, imgsz: int, half: bool, device: str) -> Optional[str]:
    """Where an automatic export of `model` is cached: beside the weights, keyed by input
    size, precision and (for TensorRT, which is built for one GPU) the device."""
    fmt = model_format(model)
    if fmt not in _EXPORTS:
        return None
    stem = str(model).rstrip('/')[:-len(_EXPORTS[fmt])]
    key = f'{stem}_{imgsz}' + ('_fp16' if half else '')
    if fmt == 'engine':
        key += '_gpu' + (str(device).replace('cuda:', '') or '0')
    return key + _EXPORTS[fmt]


def prepare_model(model: str, imgsz: int, half: bool = False, device: str = '',
                  search_dirs: Sequence[str] = (), log=print) -> str:
    """The path to load: the model itself, or an export of its sibling .pt, built once and
    cached (an .engine, _ncnn_model/, _openvino_model/, .onnx or .torchscript that is missing
    but whose .pt exists or is an official name Ultralytics can download)."""
    model = find_model(str(model), search_dirs)
    fmt = model_format(model)
    if os.path.exists(model) or fmt not in _EXPORTS:
        return model
    target = cached_export_path(model, imgsz, half, device)
    if os.path.exists(target):
        return target
    if fmt == 'engine' and not _cuda_available():
        raise ModelError(_no_cuda_message(model))
    weights = str(model).rstrip('/')[:-len(_EXPORTS[fmt])] + '.pt'
    weights = find_model(weights, search_dirs)
    if not os.path.exists(weights) and os.path.basename(weights) != weights:
        raise ModelError(f'model not found: {model} (and no {weights} to export it from)')
    log(f'{model} not found: exporting {weights} to {fmt} (imgsz {imgsz}), once')
    try:
        from ultralytics import YOLO
        built = YOLO(weights, task='detect').export(format=fmt, imgsz=imgsz, half=half,
                                                    device=device or None, verbose=False)
    except Exception as exc:
        raise ModelError(f'cannot export {weights} to {fmt}: {exc}') from exc
    os.replace(str(built).rstrip('/'), target)
    log(f'cached the {fmt} export as {target}')
    return target


def resolve_classes(spec: Union[str, Sequence[Union[str, int]], None],
                    names: Dict[int, str]) -> Optional[List[int]]:
    """`classes` as given by a user (names, indices, or 'a,b' text; empty = all) -> indices."""
    if spec is None:
        return None
    if isinstance(spec, str):
        items: List[Union[str, int]] = [s.strip() for s in spec.split(',') if s.strip()]
    else:
        items = list(spec)
    if not items:
        return None
    by_name = {v: k for k, v in names.items()}
    out = []
    for item in items:
        if isinstance(item, str) and item.lstrip('-').isdigit():
            item = int(item)
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if int(item) not in names:
                raise ValueError(f'class index {item} is not in the model (0..{len(names) - 1})')
            out.append(int(item))
        elif isinstance(item, str) and item in by_name:
            out.append(by_name[item])
        else:
            known = ', '.join(list(by_name)[:12]) + (', ...' if len(by_name) > 12 else '')
            raise ValueError(f'unknown class {item!r}; the model knows: {known}')
    return sorted(set(out))


class Detector:
    """One loaded model and its prediction options.

    Args:
        model: path or name (see module docstring).
        device: '' (Ultralytics' choice), 'cpu', '0' / 'cuda:0', ...
        imgsz: network input size; smaller is faster and misses small objects.
        half: FP16 where the backend supports it (TensorRT, CUDA, OpenVINO GPU).
        conf: minimum score; keep it below the tracker's activation threshold so ByteTrack
            can use the low-score boxes to keep tracks alive.
        iou: NMS IoU threshold; lower merges more overlapping boxes.
        classes: class indices to keep (None: all).
        max_det: maximum boxes per frame.
        threads: CPU threads for inference (0: the library's default, cores - 1).
        search_dirs: where to look for a relative model path that is not in the working
            directory (the package's models/ folder).
        log: where progress of a one-time export goes.
    """

    def __init__(self, model: str, device: str = '', imgsz: int = 640, half: bool = False,
                 conf: float = 0.25, iou: float = 0.7, classes: Optional[List[int]] = None,
                 max_det: int = 300, threads: int = 0, search_dirs: Sequence[str] = (),
                 log=print) -> None:
        self.model_path = prepare_model(str(model), imgsz, half, device, search_dirs, log)
        check_model(self.model_path, device)
        if threads > 0:
            os.environ.setdefault('OMP_NUM_THREADS', str(threads))
        try:
            from ultralytics import YOLO
            self._model = YOLO(self.model_path, task='detect')
        except Exception as exc:
            raise ModelError(f'cannot load model {self.model_path}: {exc}') from exc
        self.device = device
        self.imgsz = int(imgsz)
        self.half = bool(half)
        self._kwargs = dict(imgsz=self.imgsz, device=device or None, verbose=False,
                            **self._precision_args(self.half))
        self.set_options(conf=conf, iou=iou, classes=classes, max_det=max_det)
        self.names: Dict[int, str] = {int(k): str(v) for k, v in self._model.names.items()}
        self.last_speed_ms: Dict[str, float] = {}
        # CPU of the calling thread in detect() (a multi-threaded backend's helper threads are
        # not counted); RemoteDetector reports its whole process's instead.
        self.cpu_s = 0.0
        self.backend = 'unknown'
        self._warm_up(threads)

    def _warm_up(self, threads: int) -> None:
        blank = np.zeros((self.imgsz, self.imgsz, 3), np.uint8)
        try:
            self.detect(blank)
        except Exception as exc:
            raise ModelError(f'model {self.model_path} failed its first inference: {exc}') from exc
        predictor = getattr(self._model, 'predictor', None)
        backend = getattr(predictor, 'model', None)
        self.backend = str(getattr(backend, 'format', None) or model_format(self.model_path))
        if threads > 0:
            # Ultralytics sets torch to cores-1 threads when its predictor starts; override after
            # (torch keeps the count per thread once it ran: call this on the inferring thread).
            import torch
            torch.set_num_threads(threads)
            # NCNN reads its own count for every frame; ONNX Runtime and OpenVINO fix theirs
            # when the model is compiled, and keep their library default here.
            net = getattr(backend, 'net', None)
            if net is not None and hasattr(getattr(net, 'opt', None), 'num_threads'):
                net.opt.num_threads = threads

    @staticmethod
    def _precision_args(half: bool) -> Dict[str, object]:
        if not half:
            return {}
        from ultralytics.cfg import DEFAULT_CFG_DICT
        # Ultralytics 8.4 replaced `half` with `quantize`; older releases (on robots) take half.
        return {'quantize': 16} if 'quantize' in DEFAULT_CFG_DICT else {'half': True}

    def set_options(self, conf: Optional[float] = None, iou: Optional[float] = None,
                    classes: Union[List[int], None, str] = 'keep',
                    max_det: Optional[int] = None) -> None:
        """Changes prediction options between frames (live parameter changes)."""
        if conf is not None:
            self._kwargs['conf'] = float(conf)
        if iou is not None:
            self._kwargs['iou'] = float(iou)
        if classes != 'keep':
            self._kwargs['classes'] = classes
        if max_det is not None:
            self._kwargs['max_det'] = int(max_det)

    def detect(self, frame_bgr: np.ndarray) -> sv.Detections:
        cpu0 = time.thread_time()
        result = self._model.predict(frame_bgr, **self._kwargs)[0]
        self.last_speed_ms = dict(result.speed)
        dets = sv.Detections.from_ultralytics(result)
        self.cpu_s += time.thread_time() - cpu0
        return dets

    def detect_many(self, frames_bgr: Sequence[np.ndarray]) -> List[sv.Detections]:
        """One batched call for several frames or crops (the cascade's windows): Ultralytics
        letterboxes each to imgsz and runs them through the network together."""
        if not frames_bgr:
            return []
        cpu0 = time.thread_time()
        results = self._model.predict(list(frames_bgr), **self._kwargs)
        out = [sv.Detections.from_ultralytics(r) for r in results]
        self.cpu_s += time.thread_time() - cpu0
        return out
