"""The offloading runtime: tiers, lazy services, health, degradation, pressure, metrics.

Knows nothing of movies, HTTP routes or SQL, so it can be embedded in any ASGI/RSGI app.
"""
