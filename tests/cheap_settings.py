"""Settings that make a test server cheap to run.

argon2id at its defaults (3 passes over 64 MiB, 4 lanes) costs about half a second of CPU
per password hash; the suite hashes thousands of passwords on a 2-core machine, so every
test server hashes with the smallest parameters the settings accept.
"""

from __future__ import annotations

FAST_ARGON2 = {
    "REVENGE_AUTH__ARGON2_TIME_COST": "1",
    "REVENGE_AUTH__ARGON2_MEMORY_KIB": "1024",
    "REVENGE_AUTH__ARGON2_PARALLELISM": "1",
}
