"""Children that die with their parent, also when it is SIGKILLed (Linux: PR_SET_PDEATHSIG).

The signal follows the thread that started the child: start children from a thread that lives
as long as they should (the main thread, a pool's worker)."""

import ctypes
import os
import signal
import sys
from typing import Callable, Optional

_PR_SET_PDEATHSIG = 1   # <linux/prctl.h>


def _bind_prctl() -> Optional[Callable]:
    """libc's prctl, looked up once here: between fork and exec a child may only call it
    (no import, no symbol look-up: another thread of the parent may have held their locks)."""
    if not sys.platform.startswith('linux'):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


PRCTL = _bind_prctl()


def die_with(parent: int) -> None:
    """Called in a child: the kernel SIGKILLs it when `parent` ends; ends it now if `parent`
    already has (before the request took effect). Without prctl: nothing (the caller's other
    means, such as a closed pipe, must end it)."""
    if PRCTL is not None:
        PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(137)
