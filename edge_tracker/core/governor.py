"""The detector's reaction to the thermal throttle level: stop the cascade's deeper stage, skip
more frames, switch to a lighter model, or pause inference, so a hot robot slows down gradually
instead of being throttled hard.

The deeper stage is the first thing to go: it stops from level 1 (warm), the lowest level at
which anything is shed, so no other reaction is ever in force while it still runs (with
warm_frame_skip 1, stopping it is all that warm does). It is a refinement; the quick stage's
detections alone keep the tracks going."""

from dataclasses import dataclass
from typing import Optional, Tuple

LEVEL_NAMES = ('normal', 'warm', 'hot', 'critical')


@dataclass(frozen=True)
class Reactions:
    """What each throttle level does.

    warm_frame_skip, hot_frame_skip, critical_frame_skip: factors multiplying `frame_skip`
        (1 = no extra skipping). Larger factors cool faster; tracks keep coming at camera rate
        (predicted between detections) but react later to new objects.
    fallback_level: from this level on, the fallback model is used when one is configured
        (4 = never).
    critical_pause: stop inference at critical; tracks coast on prediction until they expire.
    """
    warm_frame_skip: int = 2
    hot_frame_skip: int = 3
    critical_frame_skip: int = 6
    fallback_level: int = 2
    critical_pause: bool = True


@dataclass(frozen=True)
class Mode:
    level: int
    frame_skip: int      # effective: the base frame_skip times the level's factor
    use_fallback: bool
    paused: bool
    deep: bool = False   # the cascade's deeper stage may run (configured, and level 0)

    def describe(self) -> str:
        if self.paused:
            return 'inference paused'
        frames = 'every frame' if self.frame_skip == 1 else f'1 frame in {self.frame_skip}'
        deep = ', deeper stage on' if self.deep else ''
        return f'inference on {frames}, {"fallback" if self.use_fallback else "main"} model{deep}'


class Governor:
    def __init__(self, reactions: Reactions, frame_skip: int = 1,
                 has_fallback: bool = False, has_deep: bool = False) -> None:
        self.reactions = reactions
        self.frame_skip = frame_skip
        self.has_fallback = has_fallback
        self.has_deep = has_deep
        self.level = 0
        self.mode = self._mode(0)

    def _mode(self, level: int) -> Mode:
        r = self.reactions
        factor = (1, r.warm_frame_skip, r.hot_frame_skip, r.critical_frame_skip)[level]
        return Mode(level=level, frame_skip=max(1, self.frame_skip * factor),
                    use_fallback=self.has_fallback and level >= r.fallback_level,
                    paused=level == 3 and r.critical_pause,
                    deep=self.has_deep and level == 0)

    def update(self, level: Optional[int] = None, reactions: Optional[Reactions] = None,
               frame_skip: Optional[int] = None) -> Tuple[bool, Mode]:
        """New level (clamped to 0..3) and/or settings; returns (mode changed, mode)."""
        if level is not None:
            self.level = min(3, max(0, int(level)))
        if reactions is not None:
            self.reactions = reactions
        if frame_skip is not None:
            self.frame_skip = int(frame_skip)
        mode = self._mode(self.level)
        changed = mode != self.mode
        self.mode = mode
        return changed, mode
