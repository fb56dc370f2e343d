"""tools/message_cost: two real processes pass reliable messages paced and back to back, and
each reports its own CPU per message (the figures bench sets beside its glue)."""

import math
import os

from edge_tracker.tools import message_cost


def test_every_message_arrives_and_both_sides_report_their_cpu():
    before = dict(os.environ)
    result = message_cost.measure(hz=50.0, seconds=1.0)
    assert dict(os.environ) == before   # the children isolate themselves, not the caller
    assert result['messages'] == 50
    assert result['listener_received'] == 2 * result['messages']   # reliable: none lost
    for side in ('talker', 'listener'):
        for phase in ('paced', 'burst'):
            value = result[f'{side}_{phase}_ms']
            assert math.isfinite(value) and value > 0, (side, phase, value)
    text = message_cost.describe(result)
    assert f"{result['talker_paced_ms']:.2f} ms publishing" in text
