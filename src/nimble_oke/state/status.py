"""What state a session is in, as the state store records it and the user reads it.

The values are the strings the store has always held (a database written by an older
nimble reads the same), so a member compares equal to its stored text.
"""

from __future__ import annotations

from enum import StrEnum


class SessionStatus(StrEnum):
    PROVISIONING = "provisioning"
    DEPLOYING = "deploying"
    READY = "ready"
    FAILED = "failed"  # up failed and kept what it made (--keep-on-failure)
    ROLLED_BACK = "rolled back"
    TEARING_DOWN = "tearing down"
    DOWN = "down"
    DOWN_INCOMPLETE = "down (incomplete)"
    DOWN_CACHE_KEPT = "down (cache kept)"
    STANDBY = "standby (cluster kept)"
    ENFORCED = "stopped by the watchdog"  # the lease or budget ran out: GPU pool at zero
    HIBERNATED = "hibernated"  # down --hibernate: GPU node stopped, storage billed only

    @property
    def display(self) -> str:
        """How ``status``/``sessions`` say it (one line, no jargon)."""
        return _DISPLAY.get(self, self.value)

    @property
    def live(self) -> bool:
        """Whether an endpoint may be serving (something billed at GPU rates may run)."""
        return self in (SessionStatus.DEPLOYING, SessionStatus.READY)

    @classmethod
    def of(cls, text: str) -> SessionStatus | None:
        """The member a stored string names (None for text this version does not know)."""
        try:
            return cls(text)
        except ValueError:
            return None


_DISPLAY = {
    SessionStatus.FAILED: "failed (resources kept: nimble down removes them)",
    SessionStatus.ROLLED_BACK: "rolled back (nothing of the failed run left)",
    SessionStatus.STANDBY: "standby (network and cluster kept, no GPU)",
    SessionStatus.ENFORCED: "stopped by the watchdog (GPU pool at zero; nimble up resumes)",
    SessionStatus.HIBERNATED: "hibernated (GPU node stopped, storage billed only; nimble up wakes it)",
}
