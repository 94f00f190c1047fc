"""Redis as the optional warm cache: L1 + L2 values and the invalidation channel.

Wiring::

    cache = Cache.from_settings(settings.cache)
    await cache.start()            # never fails because of Redis
    ...
    await cache.close()
"""

from .cache import INVALIDATION_CHANNEL, Cache, CacheHealth, CacheStats
from .l1 import LocalCache
from .pubsub import Subscription

__all__ = [
    "INVALIDATION_CHANNEL",
    "Cache",
    "CacheHealth",
    "CacheStats",
    "LocalCache",
    "Subscription",
]
