"""The NGC API key format, defined once, and throwaway keys for simulators and tests.

Nothing here is a credential: :func:`throwaway_key` makes a well-formed key that no
registry ever issued, fresh on every call, so no key-looking literal needs to live in the
repository (the simulated nvcr.io accepts any well-formed key; real NGC accepts none of these).
"""

from __future__ import annotations

import re

NGC_KEY_PREFIX = "nvapi-"
# Personal/service keys start with the prefix; legacy API keys are long base64-like strings.
NGC_KEY_RE = re.compile(
    rf"^({re.escape(NGC_KEY_PREFIX)}[A-Za-z0-9_\-]{{20,}}|[A-Za-z0-9+/=]{{40,}})$"
)


def throwaway_key(tag: str = "") -> str:
    """A random, well-formed, never-issued NGC key (``tag`` is appended, e.g. ``revoked``)."""
    import secrets  # not at module level: redaction (and so CLI start-up) imports this module

    return NGC_KEY_PREFIX + secrets.token_urlsafe(24) + (f"-{tag}" if tag else "")
