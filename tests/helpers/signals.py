"""Signals as tests send them."""

from __future__ import annotations

import os
import weakref


def swallowed_in_a_weakref_callback(signum) -> None:
    """``signum`` sent to this process inside a weakref callback, where Python swallows what
    its handler raises (as a garbage collection during a report's plots did)."""

    class Thing:
        pass

    def callback(_):
        os.kill(os.getpid(), signum)
        for _ in range(10000):  # the handler runs here, at a bytecode boundary
            pass

    thing = Thing()
    ref = weakref.ref(thing, callback)
    del thing  # the callback runs, its exception "ignored"
    assert ref() is None
