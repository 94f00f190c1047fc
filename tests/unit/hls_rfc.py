"""Checks written from RFC 8216 (HLS), run on every playlist the tests see, next to the m3u8 library's
strict parse."""

from __future__ import annotations

import math
import re

import m3u8

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)')


def attributes(line: str) -> dict[str, str]:
    _, _, rest = line.partition(":")
    return {k: v.strip('"') for k, v in _ATTR.findall(rest)}


def _tag_value(lines: list[str], tag: str) -> str | None:
    found = [ln.split(":", 1)[1] for ln in lines if ln.startswith(tag + ":")]
    assert len(found) <= 1, f"{tag} appears {len(found)} times (4.3.3: at most once)"
    return found[0] if found else None


def check_media_playlist(text: str) -> m3u8.M3U8:
    """A complete VOD media playlist; returns the strict m3u8 parse."""
    parsed = m3u8.M3U8(text, strict=True)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    assert lines[0] == "#EXTM3U", "4.3.1.1: the first line is #EXTM3U"
    assert not any(ln.startswith("#EXT-X-STREAM-INF") for ln in lines), "no master tags (4.3.5)"
    target = _tag_value(lines, "#EXT-X-TARGETDURATION")
    assert target is not None and target.isdigit(), "4.3.3.1: EXT-X-TARGETDURATION is required"
    version = int(_tag_value(lines, "#EXT-X-VERSION") or "1")
    assert _tag_value(lines, "#EXT-X-PLAYLIST-TYPE") == "VOD"
    assert lines[-1] == "#EXT-X-ENDLIST", "a VOD playlist ends with EXT-X-ENDLIST (4.3.3.4)"
    sequence = int(_tag_value(lines, "#EXT-X-MEDIA-SEQUENCE") or "0")
    first_segment = next(i for i, ln in enumerate(lines) if ln.startswith("#EXTINF"))
    seq_line = next((i for i, ln in enumerate(lines) if ln.startswith("#EXT-X-MEDIA-SEQUENCE")), -1)
    assert seq_line < first_segment, "4.3.3.2: EXT-X-MEDIA-SEQUENCE comes before the first segment"
    durations: list[float] = []
    uris: list[str] = []
    for i, ln in enumerate(lines):
        if ln.startswith("#EXTINF:"):
            value = ln.removeprefix("#EXTINF:").split(",", 1)[0]
            duration = float(value)
            if "." in value:
                assert version >= 3, "4.3.2.1: decimal EXTINF needs version 3"
            assert duration > 0
            assert math.floor(duration + 0.5) <= int(target), (
                f"4.3.3.1: EXTINF {duration} rounds above the target duration {target}"
            )
            assert not lines[i + 1].startswith("#"), "4.3.2.1: each EXTINF is followed by its URI"
            durations.append(duration)
            uris.append(lines[i + 1])
    assert durations, "a playlist with no segment"
    maps = [i for i, ln in enumerate(lines) if ln.startswith("#EXT-X-MAP")]
    if any(u.split("?")[0].endswith(".m4s") for u in uris):
        assert maps and maps[0] < first_segment, "4.3.2.5: fMP4 segments need EXT-X-MAP first"
        assert version >= 6, "4.3.2.5 / 7: EXT-X-MAP outside I-frame playlists needs version 6"
    numbers = [int(u.split("?")[0].rsplit("/", 1)[-1].split(".")[0]) for u in uris]
    assert numbers == list(range(sequence, sequence + len(numbers))), (
        "media sequence continuity: segment n is file n"
    )
    assert len(parsed.segments) == len(durations)
    assert parsed.is_endlist and parsed.playlist_type == "vod"
    return parsed


def check_master_playlist(text: str) -> m3u8.M3U8:
    parsed = m3u8.M3U8(text, strict=True)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    assert lines[0] == "#EXTM3U"
    assert not any(ln.startswith("#EXTINF") for ln in lines), "no media tags in a master (4.3.5)"
    groups: dict[str, list[dict[str, str]]] = {}
    for ln in lines:
        if ln.startswith("#EXT-X-MEDIA:"):
            a = attributes(ln)
            for key in ("TYPE", "GROUP-ID", "NAME"):
                assert key in a, f"4.3.4.1: EXT-X-MEDIA needs {key}"
            if a["TYPE"] == "SUBTITLES":
                assert "URI" in a, "4.3.4.1: a SUBTITLES rendition needs a URI"
            else:
                assert "FORCED" not in a, "4.3.4.1: FORCED only for SUBTITLES"
            if a.get("DEFAULT") == "YES":
                assert a.get("AUTOSELECT", "YES") == "YES", "4.3.4.1: DEFAULT=YES needs AUTOSELECT"
            groups.setdefault(a["GROUP-ID"], []).append(a)
    for name, members in groups.items():
        names = [m["NAME"] for m in members]
        assert len(set(names)) == len(names), f"4.3.4.1.1: NAMEs unique in group {name}"
        assert sum(m.get("DEFAULT") == "YES" for m in members) <= 1, "one DEFAULT per group"
    variants = 0
    for i, ln in enumerate(lines):
        if ln.startswith("#EXT-X-STREAM-INF:"):
            a = attributes(ln)
            assert int(a["BANDWIDTH"]) > 0, "4.3.4.2: BANDWIDTH is required"
            if "AVERAGE-BANDWIDTH" in a:
                assert int(a["AVERAGE-BANDWIDTH"]) <= int(a["BANDWIDTH"])
            assert a.get("CODECS"), "4.3.4.2: CODECS SHOULD be present; we always give it"
            if "RESOLUTION" in a:
                assert re.fullmatch(r"\d+x\d+", a["RESOLUTION"])
            if "SUBTITLES" in a:
                assert a["SUBTITLES"] in groups, "4.3.4.2: SUBTITLES names an EXT-X-MEDIA group"
            assert not lines[i + 1].startswith("#"), "4.3.4.2: the URI follows EXT-X-STREAM-INF"
            variants += 1
    assert variants == len(parsed.playlists) > 0
    return parsed
