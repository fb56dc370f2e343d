"""Deterministic synthetic scenes: moving shapes on a textured background, with ground truth.

Every frame is a pure function of (seed, frame index), so a test can ask for frame 500 without
rendering 0..499, and the ground truth is exact by construction.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

# Class names in the order of the project's own model. Colours are BGR and far apart in hue.
CLASS_NAMES: Tuple[str, ...] = ('circle', 'square', 'triangle')
CLASS_COLOURS_BGR: Tuple[Tuple[int, int, int], ...] = ((40, 40, 220), (40, 200, 40), (220, 120, 30))


@dataclass(frozen=True)
class SceneObject:
    track_id: int          # ground-truth identity, 1-based as in MOTChallenge
    class_id: int
    size: float            # side (square, triangle) or diameter (circle), pixels
    x0: float              # centre at frame 0, pixels
    y0: float
    vx: float              # pixels per frame
    vy: float
    first_frame: int = 0   # visible on [first_frame, last_frame)
    last_frame: int = 1 << 30


@dataclass(frozen=True)
class GroundTruthBox:
    track_id: int
    class_id: int
    x1: float
    y1: float
    x2: float
    y2: float


def _fold(value: float, length: float) -> float:
    """Position on [0, length] of a point moving on a line and bouncing off both ends."""
    if length <= 0:
        return 0.0
    m = value % (2.0 * length)
    return m if m <= length else 2.0 * length - m


class SyntheticScene:
    """Shapes of `CLASS_NAMES` moving in straight lines and bouncing off the frame edges.

    Args:
        width, height: frame size in pixels.
        seed: everything (background, objects, speeds) derives from it.
        num_objects: how many objects the scene starts with.
        objects: explicit objects instead of random ones (for tests that need known motion).
        max_speed: upper bound on |velocity| in pixels per frame; higher makes tracking harder.
        noise: per-frame sensor noise amplitude (0 disables it and makes frames cheaper).
    """

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0, num_objects: int = 4,
                 objects: Optional[Sequence[SceneObject]] = None, max_speed: float = 4.0,
                 noise: int = 6) -> None:
        if width < 32 or height < 32:
            raise ValueError(f'synthetic scene needs at least 32x32 pixels, got {width}x{height}')
        self.width = int(width)
        self.height = int(height)
        self.seed = int(seed)
        self.noise = int(noise)
        rng = np.random.default_rng(self.seed)
        self.background = self._make_background(rng)
        if objects is None:
            objects = self._random_objects(rng, num_objects, max_speed)
        self.objects: List[SceneObject] = list(objects)
        # A small bank of noise frames, cycled: per-frame noise without per-frame allocation.
        shape = (self.height, self.width, 3)
        self._noise_bank = rng.integers(-self.noise, self.noise + 1, size=(4,) + shape,
                                        dtype=np.int16) if self.noise > 0 else None
        self._noise_buf = np.empty(shape, np.int16)

    def _make_background(self, rng: np.random.Generator) -> np.ndarray:
        # Smooth low-frequency texture plus a gradient: not flat, but never shape-like.
        small = rng.integers(70, 150, size=(max(2, self.height // 40), max(2, self.width // 40), 3))
        texture = cv2.resize(small.astype(np.uint8), (self.width, self.height),
                             interpolation=cv2.INTER_CUBIC)
        ramp = np.linspace(-15, 15, self.width, dtype=np.float32)[None, :, None]
        return np.clip(texture.astype(np.float32) + ramp, 0, 255).astype(np.uint8)

    def _random_objects(self, rng: np.random.Generator, count: int,
                        max_speed: float) -> List[SceneObject]:
        objs = []
        short = min(self.width, self.height)
        for i in range(count):
            size = float(rng.uniform(0.10, 0.22) * short)
            speed = float(rng.uniform(0.4, 1.0) * max_speed)
            angle = float(rng.uniform(0, 2 * np.pi))
            objs.append(SceneObject(
                track_id=i + 1, class_id=int(i % len(CLASS_NAMES)), size=size,
                x0=float(rng.uniform(size, self.width - size)),
                y0=float(rng.uniform(size, self.height - size)),
                vx=speed * np.cos(angle), vy=speed * np.sin(angle)))
        return objs

    def _centre(self, obj: SceneObject, index: int) -> Tuple[float, float]:
        half = obj.size / 2.0
        x = half + _fold(obj.x0 - half + obj.vx * index, self.width - obj.size)
        y = half + _fold(obj.y0 - half + obj.vy * index, self.height - obj.size)
        return x, y

    def ground_truth(self, index: int) -> List[GroundTruthBox]:
        """Boxes of the objects visible in frame `index`, in drawing order (later on top)."""
        boxes = []
        for obj in self.objects:
            if not obj.first_frame <= index < obj.last_frame:
                continue
            x, y = self._centre(obj, index)
            h = obj.size / 2.0
            boxes.append(GroundTruthBox(obj.track_id, obj.class_id, x - h, y - h, x + h, y + h))
        return boxes

    def render(self, index: int, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Draws frame `index` (BGR, uint8) into `out` when given, reusing its memory."""
        shape = (self.height, self.width, 3)
        if out is None or out.shape != shape or out.dtype != np.uint8:
            out = np.empty(shape, np.uint8)
        np.copyto(out, self.background)
        for box in self.ground_truth(index):
            self._draw(out, box)
        if self._noise_bank is not None:
            bank = self._noise_bank
            np.add(out, bank[index % len(bank)], out=self._noise_buf, dtype=np.int16)
            np.clip(self._noise_buf, 0, 255, out=self._noise_buf)
            out[...] = self._noise_buf
        return out

    @staticmethod
    def _draw(img: np.ndarray, box: GroundTruthBox) -> None:
        colour = CLASS_COLOURS_BGR[box.class_id]
        x1, y1, x2, y2 = (int(round(v)) for v in (box.x1, box.y1, box.x2, box.y2))
        name = CLASS_NAMES[box.class_id]
        if name == 'circle':
            centre = ((x1 + x2) // 2, (y1 + y2) // 2)
            cv2.circle(img, centre, max(1, (x2 - x1) // 2), colour, -1, cv2.LINE_AA)
        elif name == 'square':
            cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
        else:
            pts = np.array([[(x1 + x2) // 2, y1], [x2 - 1, y2 - 1], [x1, y2 - 1]], np.int32)
            cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
