"""AnswerPacer, the lossless replay's hand-shake: the next item waits for the previous answer."""

import threading
import time

from edge_tracker.core.pacing import AnswerPacer


def test_wait_returns_at_once_before_anything_was_sent_and_after_the_answer():
    pacer = AnswerPacer(timeout_s=5.0)
    assert pacer.wait()
    pacer.sent('a')
    pacer.answered('a')
    assert pacer.wait() and pacer.answered_count == 1 and pacer.timeouts == 0


def test_wait_blocks_until_the_matching_answer_only():
    pacer = AnswerPacer(timeout_s=5.0)
    pacer.sent(2)
    released = []

    def answer():
        time.sleep(0.2)
        pacer.answered(1)          # an answer to an older item releases nothing
        time.sleep(0.2)
        released.append(time.monotonic())
        pacer.answered(2)
    threading.Thread(target=answer).start()
    t0 = time.monotonic()
    assert pacer.wait()
    assert released and time.monotonic() >= released[0] and time.monotonic() - t0 >= 0.35


def test_a_lost_answer_times_out_and_is_counted_and_close_releases():
    pacer = AnswerPacer(timeout_s=0.2)
    pacer.sent('x')
    assert not pacer.wait() and pacer.timeouts == 1
    assert pacer.wait()            # nothing outstanding any more
    pacer.sent('y')
    pacer.timeout_s = 30.0
    threading.Timer(0.1, pacer.close).start()
    t0 = time.monotonic()
    assert not pacer.wait() and time.monotonic() - t0 < 5 and pacer.timeouts == 1
