"""When the studio shows a reduced-precision preview and when the exact frame: previews while the user is moving
something (a slider dragged, a stroke painted: a mouse button held, or changes coming faster than SETTLE_S), the
exact fp32 frame as soon as nothing has changed for SETTLE_S.  Pure logic, driven by the event loop's clock."""

from __future__ import annotations

from dataclasses import dataclass

SETTLE_S = 0.15  # this long without a change, a drag has ended: the exact frame replaces the preview


@dataclass
class PreviewSchedule:
    settle_s: float = SETTLE_S
    changed_at: float = -1e9  # when the state last changed
    shown_preview: bool = False  # the frame on screen is a preview (its exact frame is still to come)
    exact_asked: int = -1  # the version whose exact frame was last asked for
    previews_shown: int = 0

    def on_change(self, now: float, moving: bool, allowed: bool) -> bool:
        """A new state version is submitted: True to render it as a preview."""
        quick = now - self.changed_at < self.settle_s
        self.changed_at = now
        return allowed and (moving or quick)

    def exact_due(self, now: float, shown_version: int, version: int) -> bool:
        """True once per version when the preview on screen is of the current state and the state has been still
        for settle_s: the loop then asks for the exact frame."""
        if not self.shown_preview or shown_version != version or self.exact_asked == version:
            return False
        if now - self.changed_at < self.settle_s:
            return False
        self.exact_asked = version
        return True

    def takes(self, version: int, preview: bool, shown_version: int) -> bool:
        """Whether a finished render replaces the frame on screen: a newer version, or the exact frame of the
        version whose preview is shown (never a preview over its own exact frame)."""
        if version > shown_version:
            return True
        return version == shown_version and self.shown_preview and not preview

    def shown(self, preview: bool) -> None:
        self.shown_preview = preview
        self.previews_shown += int(preview)

    @property
    def settled(self) -> bool:
        """No preview waits for its exact frame."""
        return not self.shown_preview
