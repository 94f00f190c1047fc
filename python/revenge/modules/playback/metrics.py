"""Playback's Prometheus metrics (one set per process, summed over workers by the multiprocess
collector like the runtime's own)."""

from __future__ import annotations

from typing import ClassVar

from prometheus_client import Counter, Gauge, Histogram

FIRST_SEGMENT_BUCKETS = (0.05, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
METHODS = ("direct", "remux", "transcode")
REFUSALS = ("user_limit", "server_limit", "memory_pressure", "session_limit")


class PlaybackMetrics:
    _instance: ClassVar[PlaybackMetrics | None] = None

    @classmethod
    def get(cls) -> PlaybackMetrics:
        """The process's one set: a metric name may be registered once per registry."""
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def __init__(self) -> None:
        self.sessions_created = Counter(
            "revenge_playback_sessions_total", "Playback sessions made, by method", ["method"]
        )
        self.sessions_active = Gauge(
            "revenge_playback_sessions_active",
            "Playback sessions in memory, by method",
            ["method"],
            multiprocess_mode="livesum",
        )
        self.transcodes_running = Gauge(
            "revenge_playback_transcodes_running",
            "ffmpeg runs alive (paused ones included)",
            multiprocess_mode="livesum",
        )
        self.first_segment = Histogram(
            "revenge_playback_first_segment_seconds",
            "From starting ffmpeg to its first segment complete, by kind (encode or copy)",
            ["kind"],
            buckets=FIRST_SEGMENT_BUCKETS,
        )
        self.cache_hits = Counter(
            "revenge_playback_segment_cache_hits_total", "Segment requests served from memory"
        )
        self.cache_misses = Counter(
            "revenge_playback_segment_cache_misses_total",
            "Segment requests that waited for ffmpeg or the disk",
        )
        self.cache_bytes_in = Counter(
            "revenge_playback_segment_cache_bytes_total", "Segment bytes put into the cache"
        )
        self.cache_refused = Counter(
            "revenge_playback_segment_cache_refused_total",
            "Segments the cache refused (budget or pressure): served from disk",
        )
        self.bytes_served = Counter(
            "revenge_playback_bytes_served_total", "Media bytes answered, by kind", ["kind"]
        )
        self.restarts = Counter(
            "revenge_playback_ffmpeg_restarts_total", "ffmpeg restarted (seek, variant switch)"
        )
        self.failures = Counter(
            "revenge_playback_ffmpeg_failures_total", "ffmpeg runs that failed or could not start"
        )
        self.refusals = Counter(
            "revenge_playback_refusals_total", "Playback refused, by reason", ["reason"]
        )
        self.handoffs = Counter(
            "revenge_playback_handoffs_total",
            "Segments asked of the worker that owns the session (several workers)",
        )
        self.idle_reaped = Counter(
            "revenge_playback_sessions_reaped_total", "Sessions dropped idle or expired"
        )
        self.disk_pauses = Counter(
            "revenge_playback_disk_pauses_total", "ffmpeg paused to keep the disk budget"
        )
        self.disk_bytes = Gauge(
            "revenge_playback_transcode_disk_bytes",
            "Bytes in the transcode folder",
            multiprocess_mode="livesum",
        )
        self.disk_budget = Gauge(
            "revenge_playback_transcode_disk_budget_bytes",
            "playback.transcode_disk_max",
            multiprocess_mode="livemax",
        )
        self.pinned_bytes = Gauge(
            "revenge_playback_pinned_bytes",
            "Segment bytes pinned in the transcode cache (sessions' near windows)",
            multiprocess_mode="livesum",
        )
        self.bandwidth = Gauge(
            "revenge_playback_client_bandwidth_bps",
            "Smoothed bits per second the clients pull, summed over sessions",
            multiprocess_mode="livesum",
        )
        for method in METHODS:
            self.sessions_created.labels(method)
            self.sessions_active.labels(method)
        for reason in REFUSALS:
            self.refusals.labels(reason)
        for kind in ("encode", "copy"):
            self.first_segment.labels(kind)
        for kind in ("segment", "direct", "playlist", "subtitle"):
            self.bytes_served.labels(kind)
