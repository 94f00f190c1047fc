"""Playback: the transcoder client (cold: built on first playback, offloaded when idle)."""

from revenge.modules.playback.transcoder import MediaInfo, StreamInfo, Transcoder, TranscoderError

__all__ = ["MediaInfo", "StreamInfo", "Transcoder", "TranscoderError"]
