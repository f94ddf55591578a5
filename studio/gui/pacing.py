"""Frame pacing: the event loop draws at full speed while something happens, and at a few frames per second at
rest, so an idle studio leaves the CPU to everything else (Dear PyGui has no wait-for-event: every frame is drawn
and, without vsync under X servers such as Xvfb, the loop would spin)."""

from __future__ import annotations

from dataclasses import dataclass, field

IDLE_FRAME_S = 0.2  # at rest: 5 frames/s (input is still seen within 0.2 s, then full speed)
ACTIVE_HOLD_S = 0.5  # full speed for this long after the last sign of activity


@dataclass
class FramePacer:
    """Call `active(now)` on any input or change, and `pause(now, frame_s)` after each frame: how long to sleep."""

    last_active: float = 0.0
    mouse: tuple[float, float] = field(default=(0.0, 0.0))

    def active(self, now: float) -> None:
        self.last_active = now

    def see_mouse(self, now: float, pos: tuple[float, float], buttons_down: bool) -> None:
        if buttons_down or pos != self.mouse:
            self.mouse = pos
            self.active(now)

    def idle(self, now: float) -> bool:
        return now - self.last_active > ACTIVE_HOLD_S

    def pause(self, now: float, frame_s: float) -> float:
        """Seconds to sleep before the next frame: none while active, the rest of an idle frame at rest."""
        return max(0.0, IDLE_FRAME_S - frame_s) if self.idle(now) else 0.0
