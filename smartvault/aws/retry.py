"""The one backoff: exponential, with full jitter, from an injected random generator.

Full jitter (a uniform draw between 0 and the capped exponential) spreads the retries
of parallel workers apart, which is what gets a throttled account out of the
throttling; see the AWS Architecture Blog, "Exponential Backoff And Jitter".
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from dataclasses import field


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait before retry number ``attempt + 1``: 0..min(cap, base · 2^attempt)."""

    base: float
    cap: float
    rng: random.Random = field(default_factory=random.Random)  # jitter, not cryptography

    def __call__(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.base * 2.0**attempt))
