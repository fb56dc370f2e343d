"""Deterministic synthetic scenes: moving shapes on a textured background, with ground truth.

Every frame is a pure function of (seed, frame index), so a test can ask for frame 500 without
rendering 0..499, and the ground truth is exact by construction.

The default scene is a tracking test: shapes of three classes enter the frame from its edges,
cross it in straight lines at different speeds, pass in front of and behind each other, and
leave; a new one enters every `spawn_interval` frames on average, so about five are in view.

Ground-truth rule (also used for the training labels of the project's model):

- A box is the object's full extent (amodal: it includes the parts hidden behind nearer
  objects), shifted by the camera shake of that frame and clipped to the image. Coordinates are
  in pixel-edge units: pixel column i spans [i, i + 1).
- visibility = the object's pixels that are drawn in the frame (inside the image and not covered
  by an object drawn later, i.e. nearer) / all pixels of its shape. So it is the MOTChallenge
  visibility ratio, with leaving the image counted as occlusion too.
- An object with visibility < `min_visibility` (default 0.2) is left out of `ground_truth()`,
  so an almost fully hidden or almost fully outside object is neither a detection target nor a
  tracking target. Pass `min_visibility=0` to get every object with a pixel in view.
"""

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

# Class names in the order of the project's own model. Colours are BGR and far apart in hue.
CLASS_NAMES: Tuple[str, ...] = ('circle', 'square', 'triangle')
CLASS_COLOURS_BGR: Tuple[Tuple[int, int, int], ...] = ((40, 40, 220), (40, 200, 40), (220, 120, 30))

_SHIFT = 4                   # cv2 fractional bits: sub-pixel positions, so slow motion is smooth
_ONE = 1 << _SHIFT
_NOISE_MARGIN = 32           # the noise bank is this much larger than a frame; see render()
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class SceneObject:
    track_id: int          # ground-truth identity, 1-based as in MOTChallenge
    class_id: int
    size: float            # side (square, triangle) or diameter (circle), pixels
    x0: float              # centre at frame 0 (extrapolated for late starters), pixels
    y0: float
    vx: float              # pixels per frame
    vy: float
    first_frame: int = 0   # in the scene on [first_frame, last_frame)
    last_frame: int = 1 << 30
    depth: float = 0.0     # larger is farther: drawn earlier, hidden by nearer objects
    bounce: bool = True    # bounce off the frame edges, else move in a straight line


@dataclass(frozen=True)
class GroundTruthBox:
    track_id: int
    class_id: int
    x1: float
    y1: float
    x2: float
    y2: float
    visibility: float = 1.0   # see the module docstring


def _fold(value: float, length: float) -> float:
    """Position on [0, length] of a point moving on a line and bouncing off both ends."""
    if length <= 0:
        return 0.0
    m = value % (2.0 * length)
    return m if m <= length else 2.0 * length - m


def _hash_unit(seed: int, index: int, salt: int) -> float:
    """A uniform number on [-1, 1) from (seed, index, salt): splitmix64, no generator state, so
    per-frame randomness stays a pure function of the frame index and costs a microsecond."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB) \
        & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z >> 11) / float(1 << 52) - 1.0


def _fixed(v: float) -> int:
    return int(round(v * _ONE))


def _draw_shape(img: np.ndarray, class_id: int, cx: float, cy: float, size: float,
                colour, line_type: int) -> None:
    """Draws one object centred at (cx, cy) in pixel-edge coordinates (cv2 uses pixel centres,
    hence the -0.5). Shared by rendering and the visibility masks so both agree."""
    name = CLASS_NAMES[class_id]
    px, py, h = cx - 0.5, cy - 0.5, size / 2.0
    if name == 'circle':
        cv2.circle(img, (_fixed(px), _fixed(py)), max(1, _fixed(h - 0.5)), colour, -1,
                   line_type, _SHIFT)
        return
    if name == 'square':
        pts = ((px - h + 0.5, py - h + 0.5), (px + h - 0.5, py - h + 0.5),
               (px + h - 0.5, py + h - 0.5), (px - h + 0.5, py + h - 0.5))
    else:  # triangle, apex up
        pts = ((px, py - h + 0.5), (px + h - 0.5, py + h - 0.5), (px - h + 0.5, py + h - 0.5))
    poly = np.array([[_fixed(x), _fixed(y)] for x, y in pts], np.int32)
    cv2.fillConvexPoly(img, poly, colour, line_type, _SHIFT)


class SyntheticScene:
    """Shapes of `CLASS_NAMES` moving over a textured background; see the module docstring.

    Args:
        width, height: frame size in pixels.
        seed: everything (background, objects, speeds, shake) derives from it.
        num_objects: how many objects are in view at frame 0.
        objects: explicit objects instead of random ones (for tests that need known motion);
            no others are spawned then.
        max_speed, min_speed: range of |velocity| in pixels per frame.
        noise: per-frame sensor noise amplitude (0 disables it and makes frames cheaper).
        size_range: object size as fractions of the shorter image side.
        spawn_interval: mean frames between two objects entering from the edges (0: none).
        bounce: random objects bounce off the edges forever instead of crossing the frame
            (the first version of this scene: nothing enters or leaves).
        texture: strength of the background texture (0: a flat grey background).
        clutter: number of faint, desaturated lines and blobs painted on the background.
        shake: camera shake amplitude in pixels; each frame is shifted by an integer offset of
            at most this much (see `camera_offset`), objects and ground truth included.
        min_visibility: objects less visible than this are left out of `ground_truth()`.
    """

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0, num_objects: int = 5,
                 objects: Optional[Sequence[SceneObject]] = None, max_speed: float = 4.0,
                 noise: int = 6, min_speed: float = 1.0,
                 size_range: Tuple[float, float] = (0.08, 0.22), spawn_interval: float = 50.0,
                 bounce: bool = False, texture: float = 1.0, clutter: int = 12,
                 shake: float = 0.0, min_visibility: float = 0.2) -> None:
        if width < 32 or height < 32:
            raise ValueError(f'synthetic scene needs at least 32x32 pixels, got {width}x{height}')
        if not 0 < min_speed <= max_speed:
            raise ValueError(f'need 0 < min_speed <= max_speed, got {min_speed}, {max_speed}')
        if not 0 < size_range[0] <= size_range[1] <= 0.9:
            raise ValueError(f'size_range must be fractions 0 < lo <= hi <= 0.9, got {size_range}')
        if spawn_interval < 0 or shake < 0 or noise < 0 or texture < 0 or clutter < 0:
            raise ValueError('spawn_interval, shake, noise, texture and clutter must be >= 0')
        self.width = int(width)
        self.height = int(height)
        self.seed = int(seed)
        self.noise = int(noise)
        self.min_speed = float(min_speed)
        self.max_speed = float(max_speed)
        self.size_range = (float(size_range[0]), float(size_range[1]))
        self.texture = float(texture)
        self.clutter = int(clutter)
        self.shake = float(shake)
        self.min_visibility = float(min_visibility)
        self._margin = int(math.ceil(self.shake))   # largest shake offset in pixels
        # Independent streams per purpose, so e.g. changing `clutter` does not move the objects.
        bg_rng = np.random.default_rng([self.seed, 1])
        obj_rng = np.random.default_rng([self.seed, 2])
        self._shake_phase = np.random.default_rng([self.seed, 3]).uniform(0, 2 * np.pi, 4)
        # Frame-sized texture, reflect-padded by the largest shake so that a shaking camera
        # crops it at an offset; the same seed gives the same background with or without shake.
        m = self._margin
        self.background = cv2.copyMakeBorder(self._make_background(bg_rng), m, m, m, m,
                                             cv2.BORDER_REFLECT_101)

        explicit = objects is not None
        self.spawn_interval = 0.0 if explicit or bounce else float(spawn_interval)
        if explicit:
            self.objects: List[SceneObject] = list(objects)
        elif bounce:
            self.objects = self._bouncing_objects(obj_rng, num_objects)
        else:
            self.objects = [self._initial_object(obj_rng, i + 1) for i in range(num_objects)]
        self._first_spawn_id = 1 + max([o.track_id for o in self.objects], default=0)
        # Longest possible life: a straight line through the image grown by half the largest
        # object and the shake on every side. A frame then only looks at recent spawn slots.
        grow = 2 * (self.size_range[1] * min(self.width, self.height) / 2 + self._margin + 2)
        path = math.hypot(self.width + grow, self.height + grow)
        self._max_life = int(math.ceil(path / self.min_speed)) + 2
        self._spawn_cache: Dict[int, SceneObject] = {}

        # Sensor noise as two saturating uint8 planes (add, subtract) a bit larger than a frame;
        # each frame takes a window at a hashed offset: many distinct noise frames, no int16
        # round trip, no per-frame allocation.
        if self.noise > 0:
            nrng = np.random.default_rng([self.seed, 4])
            shape = (self.height + _NOISE_MARGIN, self.width + _NOISE_MARGIN, 3)
            signed = nrng.integers(-self.noise, self.noise + 1, size=shape, dtype=np.int16)
            self._noise_pos = np.clip(signed, 0, None).astype(np.uint8)
            self._noise_neg = np.clip(-signed, 0, None).astype(np.uint8)
        else:
            self._noise_pos = self._noise_neg = None

    # ----- construction -------------------------------------------------------------------

    def _make_background(self, rng: np.random.Generator) -> np.ndarray:
        """Grey-ish base colour, several octaves of smooth texture, fine grain and faint clutter;
        desaturated throughout so nothing on it has a class colour."""
        h, w = self.height, self.width
        base = rng.uniform(85, 165) + rng.uniform(-12, 12, size=3)
        img = np.empty((h, w, 3), np.float32)
        img[...] = base.astype(np.float32)
        if self.texture > 0:
            for cell, amp in ((80, 28.0), (24, 14.0), (6, 6.0)):
                small = rng.uniform(-1, 1, size=(max(2, h // cell), max(2, w // cell), 1))
                layer = cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
                img += (amp * self.texture) * layer[..., None]
            tint = rng.uniform(-1, 1, size=(max(2, h // 120), max(2, w // 120), 3))
            img += (8.0 * self.texture) * cv2.resize(tint.astype(np.float32), (w, h),
                                                     interpolation=cv2.INTER_CUBIC)
            img += (4.0 * self.texture) * rng.standard_normal((h, w, 1)).astype(np.float32)
            img += np.linspace(-12, 12, w, dtype=np.float32)[None, :, None] * self.texture
        for _ in range(self.clutter):
            grey = float(rng.uniform(50, 200))
            colour = tuple(float(grey + t) for t in rng.uniform(-10, 10, size=3))
            x, y = int(rng.uniform(0, w)), int(rng.uniform(0, h))
            if rng.random() < 0.5:
                x2, y2 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
                cv2.line(img, (x, y), (x2, y2), colour, int(rng.integers(1, 5)), cv2.LINE_AA)
            else:
                axes = (int(rng.uniform(5, 60)), int(rng.uniform(5, 30)))
                cv2.ellipse(img, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1,
                            cv2.LINE_AA)
        return np.clip(img, 0, 255).astype(np.uint8)

    def _random_size_speed(self, rng: np.random.Generator) -> Tuple[float, float, int, float]:
        short = min(self.width, self.height)
        size = float(rng.uniform(*self.size_range) * short)
        speed = float(rng.uniform(self.min_speed, self.max_speed))
        class_id = int(rng.integers(len(CLASS_NAMES)))
        return size, speed, class_id, float(rng.random())

    def _bouncing_objects(self, rng: np.random.Generator, count: int) -> List[SceneObject]:
        objs = []
        for i in range(count):
            size, speed, _, depth = self._random_size_speed(rng)
            angle = float(rng.uniform(0, 2 * np.pi))
            objs.append(SceneObject(
                track_id=i + 1, class_id=int(i % len(CLASS_NAMES)), size=size,
                x0=float(rng.uniform(size, self.width - size)),
                y0=float(rng.uniform(size, self.height - size)),
                vx=speed * math.cos(angle), vy=speed * math.sin(angle), depth=depth))
        return objs

    def _exit_frame(self, x: float, y: float, vx: float, vy: float, size: float,
                    start: int) -> int:
        """First frame after `start` at which a straight-moving object centred at (x, y) at
        `start` is wholly outside the image even with the largest shake."""
        h, m = size / 2.0, self._margin + 1
        times = []
        for p, v, length in ((x, vx, self.width), (y, vy, self.height)):
            if v > 1e-9:
                times.append((length + m + h - p) / v)
            elif v < -1e-9:
                times.append((p + h + m) / -v)
        t = min(times) if times else float(1 << 30)
        return start + max(1, int(math.ceil(t)))

    def _initial_object(self, rng: np.random.Generator, track_id: int) -> SceneObject:
        size, speed, class_id, depth = self._random_size_speed(rng)
        x = float(rng.uniform(size, self.width - size))
        y = float(rng.uniform(size, self.height - size))
        angle = float(rng.uniform(0, 2 * np.pi))
        vx, vy = speed * math.cos(angle), speed * math.sin(angle)
        return SceneObject(track_id, class_id, size, x, y, vx, vy, 0,
                           self._exit_frame(x, y, vx, vy, size, 0), depth, False)

    def _spawned(self, slot: int) -> SceneObject:
        """The object that enters in spawn slot `slot` (frames [slot, slot + 1) * interval):
        from a random point on an edge (weighted by edge length), aimed at a random point in
        the middle of the frame so that it really crosses it."""
        obj = self._spawn_cache.get(slot)
        if obj is not None:
            return obj
        rng = np.random.default_rng([self.seed, 5, slot])
        size, speed, class_id, depth = self._random_size_speed(rng)
        start = int((slot + rng.random()) * self.spawn_interval)
        w, h = self.width, self.height
        out = size / 2.0 + 1    # at `start` just outside the image
        p = rng.uniform(0, 2 * (w + h))
        if p < w:
            x, y, normal = p, -out, (0.0, 1.0)
        elif p < 2 * w:
            x, y, normal = p - w, h + out, (0.0, -1.0)
        elif p < 2 * w + h:
            x, y, normal = -out, p - 2 * w, (1.0, 0.0)
        else:
            x, y, normal = w + out, p - 2 * w - h, (-1.0, 0.0)
        tx, ty = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        norm = math.hypot(tx - x, ty - y)
        vx, vy = speed * (tx - x) / norm, speed * (ty - y) / norm
        # The path does not depend on `shake`; the span starts earlier instead, while the
        # object is still farther out than any shake can bring into view.
        inward = vx * normal[0] + vy * normal[1]
        first = start - int(math.ceil(self._margin / inward)) if self._margin else start
        obj = SceneObject(self._first_spawn_id + slot, class_id, size, x - vx * start,
                          y - vy * start, vx, vy, first,
                          self._exit_frame(x, y, vx, vy, size, start), depth, False)
        if len(self._spawn_cache) > 4096:   # a camera runs for days: keep memory bounded
            self._spawn_cache.clear()
        self._spawn_cache[slot] = obj
        return obj

    # ----- per frame ----------------------------------------------------------------------

    def objects_at(self, index: int) -> List[SceneObject]:
        """Objects in the scene at frame `index` (whether in view or not), in drawing order:
        farthest first; equal depths keep their list order."""
        alive = [o for o in self.objects if o.first_frame <= index < o.last_frame]
        if self.spawn_interval > 0:
            lo = max(0, int((index - self._max_life) // self.spawn_interval))
            hi = int(index // self.spawn_interval)
            for slot in range(lo, hi + 1):
                obj = self._spawned(slot)
                if obj.first_frame <= index < obj.last_frame:
                    alive.append(obj)
        alive.sort(key=lambda o: -o.depth)
        return alive

    def camera_offset(self, index: int) -> Tuple[int, int]:
        """Integer (dx, dy) added to every pixel position of frame `index` by camera shake:
        a slow sway plus per-frame jitter, within [-shake, shake]."""
        if self._margin == 0:
            return 0, 0
        p = self._shake_phase
        offsets = []
        for axis in (0, 1):
            sway = 0.6 * math.sin(index * (0.21 + 0.07 * axis) + p[axis]) \
                + 0.15 * math.sin(index * 0.037 + p[axis + 2])
            jitter = 0.25 * _hash_unit(self.seed, index, 11 + axis)
            v = int(round(self.shake * (sway + jitter)))
            offsets.append(max(-self._margin, min(self._margin, v)))
        return offsets[0], offsets[1]

    def _centre(self, obj: SceneObject, index: int) -> Tuple[float, float]:
        if not obj.bounce:
            return obj.x0 + obj.vx * index, obj.y0 + obj.vy * index
        half = obj.size / 2.0
        x = half + _fold(obj.x0 - half + obj.vx * index, self.width - obj.size)
        y = half + _fold(obj.y0 - half + obj.vy * index, self.height - obj.size)
        return x, y

    def _placed(self, index: int) -> List[Tuple[SceneObject, float, float]]:
        """(object, centre x, centre y) in image coordinates, shake applied, drawing order."""
        dx, dy = self.camera_offset(index)
        placed = []
        for obj in self.objects_at(index):
            x, y = self._centre(obj, index)
            placed.append((obj, x + dx, y + dy))
        return placed

    def ground_truth(self, index: int,
                     min_visibility: Optional[float] = None) -> List[GroundTruthBox]:
        """Boxes of the objects in view in frame `index`, in drawing order (later on top),
        clipped to the image, with visibility; see the module docstring for the rule."""
        threshold = self.min_visibility if min_visibility is None else float(min_visibility)
        placed = self._placed(index)
        boxes = []
        for i, (obj, x, y) in enumerate(placed):
            h = obj.size / 2.0
            x1, y1, x2, y2 = x - h, y - h, x + h, y + h
            cx1, cy1 = max(0.0, x1), max(0.0, y1)
            cx2, cy2 = min(float(self.width), x2), min(float(self.height), y2)
            if cx2 <= cx1 or cy2 <= cy1:
                continue
            vis = self._visibility(placed, i)
            if vis <= 0.0 or vis < threshold:
                continue
            boxes.append(GroundTruthBox(obj.track_id, obj.class_id, cx1, cy1, cx2, cy2, vis))
        return boxes

    def _visibility(self, placed: List[Tuple[SceneObject, float, float]], i: int) -> float:
        """Rasterises object i in a small window around it, erases what nearer objects cover
        and what falls outside the image, and counts what is left."""
        obj, x, y = placed[i]
        h = obj.size / 2.0
        ox, oy = int(math.floor(x - h)) - 1, int(math.floor(y - h)) - 1
        side = int(math.ceil(obj.size)) + 3
        mask = np.zeros((side, side), np.uint8)
        _draw_shape(mask, obj.class_id, x - ox, y - oy, obj.size, 1, cv2.LINE_8)
        total = int(np.count_nonzero(mask))
        if total == 0:
            return 0.0
        for other, ux, uy in placed[i + 1:]:
            g = other.size / 2.0
            if ux + g < x - h or ux - g > x + h or uy + g < y - h or uy - g > y + h:
                continue
            _draw_shape(mask, other.class_id, ux - ox, uy - oy, other.size, 0, cv2.LINE_8)
        c1, r1 = max(0, -ox), max(0, -oy)
        c2, r2 = min(side, self.width - ox), min(side, self.height - oy)
        if c2 <= c1 or r2 <= r1:
            return 0.0
        return int(np.count_nonzero(mask[r1:r2, c1:c2])) / total

    def render(self, index: int, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Draws frame `index` (BGR, uint8) into `out` when given, reusing its memory."""
        shape = (self.height, self.width, 3)
        if out is None or out.shape != shape or out.dtype != np.uint8:
            out = np.empty(shape, np.uint8)
        dx, dy = self.camera_offset(index)
        m = self._margin
        # The camera moved by (dx, dy): image pixel (r, c) shows background (r - dy, c - dx).
        np.copyto(out, self.background[m - dy:m - dy + self.height, m - dx:m - dx + self.width])
        for obj, x, y in self._placed(index):
            _draw_shape(out, obj.class_id, x, y, obj.size, CLASS_COLOURS_BGR[obj.class_id],
                        cv2.LINE_AA)
        if self._noise_pos is not None:
            r = int((_hash_unit(self.seed, index, 21) + 1.0) * 0.5 * _NOISE_MARGIN)
            c = int((_hash_unit(self.seed, index, 22) + 1.0) * 0.5 * _NOISE_MARGIN)
            window = (slice(r, r + self.height), slice(c, c + self.width))
            cv2.add(out, self._noise_pos[window], dst=out)
            cv2.subtract(out, self._noise_neg[window], dst=out)
        return out
