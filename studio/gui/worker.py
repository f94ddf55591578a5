"""One render thread between the event loop and the engine: the latest request wins, stale results are dropped.

The event loop calls `submit()` (never blocks) and `poll()` once a frame.  A request that arrives while another
is rendering replaces any request still waiting (it is dropped unrendered), so dragging a slider renders the
newest position as soon as the worker is free; a finished result that the loop has not taken yet is replaced by
a newer one.  The loop never waits on the model.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def lower_thread_priority(niceness: int = 10) -> None:
    """Raise the calling thread's nice value, so that background work (a batch job) yields the CPU to the event
    loop and the render worker. On Linux a thread is a task with its own nice value, inherited by the threads it
    starts (its convolution thread team); elsewhere this does nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):
        pass


@dataclass
class Job:
    version: int
    payload: Any


@dataclass
class Done:
    version: int
    result: Any = None
    error: Exception | None = None
    ms: float = 0.0


class RenderWorker:
    def __init__(self, render: Callable[[Any], Any]):
        self._render = render
        self._cond = threading.Condition()
        self._pending: Job | None = None
        self._done: Done | None = None
        self._running = True
        self.busy = False
        self.dropped = 0  # requests replaced before they were rendered
        self._thread = threading.Thread(target=self._loop, name="render-worker", daemon=True)
        self._thread.start()

    def submit(self, version: int, payload: Any) -> None:
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = Job(version, payload)
            self._cond.notify()

    def poll(self) -> Done | None:
        """The newest finished result not yet taken, if it is not stale."""
        with self._cond:
            done, self._done = self._done, None
        return done

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and not self.busy

    def wait_idle(self, timeout: float = 30.0) -> bool:
        end = time.time() + timeout
        while time.time() < end:
            if self.idle:
                return True
            time.sleep(0.005)
        return False

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._running and self._pending is None:
                    self._cond.wait()
                if not self._running:
                    return
                job, self._pending = self._pending, None
                self.busy = True
            t0 = time.perf_counter()
            try:
                done = Done(job.version, result=self._render(job.payload))
            except Exception as e:  # shown in the status bar; the studio keeps running
                done = Done(job.version, error=e)
            done.ms = (time.perf_counter() - t0) * 1000
            with self._cond:
                self.busy = False
                if self._done is not None:  # an older result the loop never took: superseded
                    self.dropped += 1
                self._done = done
