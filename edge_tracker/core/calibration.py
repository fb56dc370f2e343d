"""Camera calibration files in the camera_calibration_parsers YAML layout (what ROS's
camera_calibration writes), read without ROS."""

import os
from dataclasses import dataclass, replace
from typing import List
from urllib.parse import unquote, urlparse

import yaml


class CalibrationError(ValueError):
    pass


@dataclass(frozen=True)
class Calibration:
    width: int
    height: int
    distortion_model: str
    d: List[float]
    k: List[float]   # 3x3 row-major
    r: List[float]   # 3x3
    p: List[float]   # 3x4

    def scaled_to(self, width: int, height: int) -> 'Calibration':
        """The same camera at another resolution (intrinsics scale with the image)."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        k = list(self.k)
        k[0], k[2], k[4], k[5] = k[0] * sx, k[2] * sx, k[4] * sy, k[5] * sy
        p = list(self.p)
        p[0], p[2], p[3], p[5], p[6] = p[0] * sx, p[2] * sx, p[3] * sx, p[5] * sy, p[6] * sy
        return replace(self, width=width, height=height, k=k, p=p)


def _matrix(doc: dict, key: str, size: int) -> List[float]:
    try:
        data = [float(v) for v in doc[key]['data']]
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f'calibration has no valid {key}.data') from exc
    if len(data) != size:
        raise CalibrationError(f'{key}.data has {len(data)} values, expected {size}')
    return data


def url_to_path(url: str, package_share=None) -> str:
    """file:///abs/path, package://pkg/rel/path (needs `package_share(pkg)`), or a plain path."""
    if url.startswith('package://'):
        if package_share is None:
            raise CalibrationError('package:// URLs need a package lookup')
        pkg, _, rel = url[len('package://'):].partition('/')
        return os.path.join(package_share(pkg), rel)
    if url.startswith('file://'):
        return unquote(urlparse(url).path)
    return url


def load_calibration(path: str) -> Calibration:
    try:
        with open(path, encoding='utf-8') as f:
            doc = yaml.safe_load(f)
    except OSError as exc:
        raise CalibrationError(f'cannot read calibration {path}: {exc.strerror}') from exc
    except yaml.YAMLError as exc:
        raise CalibrationError(f'calibration {path} is not valid YAML') from exc
    if not isinstance(doc, dict):
        raise CalibrationError(f'calibration {path} is not a mapping')
    try:
        width, height = int(doc['image_width']), int(doc['image_height'])
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f'calibration {path} lacks image_width/image_height') from exc
    d = doc.get('distortion_coefficients') or {}
    return Calibration(width=width, height=height,
                       distortion_model=str(doc.get('distortion_model', 'plumb_bob')),
                       d=[float(v) for v in (d.get('data') or [])],
                       k=_matrix(doc, 'camera_matrix', 9),
                       r=_matrix(doc, 'rectification_matrix', 9),
                       p=_matrix(doc, 'projection_matrix', 12))
