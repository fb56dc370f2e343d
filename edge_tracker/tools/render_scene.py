"""Renders a synthetic scene as a MOTChallenge sequence (frames or a video, gt/gt.txt,
seqinfo.ini), e.g. to feed the camera node a file or to evaluate the tracker:

    python -m edge_tracker.tools.render_scene --out /tmp/seq --frames 300 --seed 0 [--video]
"""

import argparse
import sys
import time
from typing import List, Optional

from edge_tracker.core.mot import write_sequence
from edge_tracker.core.synthetic import SyntheticScene


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog='python -m edge_tracker.tools.render_scene',
                                 description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', required=True, help='sequence directory to create or overwrite')
    ap.add_argument('--frames', type=int, default=300)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--height', type=int, default=480)
    ap.add_argument('--fps', type=float, default=30.0, help='frameRate in seqinfo.ini / video')
    ap.add_argument('--name', default=None, help='sequence name (default synthetic-SEED)')
    ap.add_argument('--video', action='store_true', help='one MJPG .avi instead of img1/*.jpg')
    ap.add_argument('--shake', type=float, default=0.0, help='camera shake amplitude, pixels')
    ap.add_argument('--noise', type=int, default=6, help='sensor noise amplitude (0: none)')
    ap.add_argument('--max-speed', type=float, default=4.0, help='pixels per frame')
    ap.add_argument('--min-visibility', type=float, default=0.2,
                    help='objects less visible than this are left out of gt.txt')
    args = ap.parse_args(argv)
    if args.frames < 1:
        ap.error('--frames must be >= 1')
    try:
        scene = SyntheticScene(args.width, args.height, seed=args.seed, shake=args.shake,
                               noise=args.noise, max_speed=args.max_speed,
                               min_visibility=args.min_visibility)
    except ValueError as exc:
        ap.error(str(exc))
    t0 = time.monotonic()
    paths = write_sequence(scene, args.out, args.frames, name=args.name, frame_rate=args.fps,
                           video=args.video)
    print(f'{args.frames} frames in {time.monotonic() - t0:.1f} s: '
          + ', '.join(f'{k}={v}' for k, v in sorted(paths.items())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
