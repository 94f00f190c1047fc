"""Artwork: the ``images_process`` job (resized variants and a blurhash) and its reads.

An ``images`` row (written by the scan for sidecars, by ``media_probe`` for embedded cover
art, by the metadata module for a remote provider's artwork) is processed once per version
of its source: the source bytes are read (a sidecar file, ffmpeg copying the attached
picture out of the video, or a download of ``source_url`` with a size cap and a
content-type check), hashed (sha256), decoded
with Pillow and written as WebP variants of the widths in :data:`VARIANT_WIDTHS` up to
the source's own width, plus a 4x3-component blurhash. Variants live in the data folder,
content-addressed (``images/<hash[:2]>/<hash>/<width>.webp``), never beside the media;
the same poster under two items is stored once. Pillow, not pyvips: measured by
``benches/bench_images.py`` (see ``benches/LIBRARY_RESULTS.md``).

A source that cannot be read or decoded marks the row ``failed`` with the reason; the
job does not retry it (the next scan that sees the source change sets it ``pending``).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from revenge.infra.db import Database
from revenge.infra.http_client import BodyRefused, read_body, tls_context
from revenge.runtime.orphans import dying_with_parent

__all__ = [
    "VARIANT_WIDTHS",
    "ImageRef",
    "ImageVariant",
    "Rendered",
    "blurhash_rgb",
    "download_image",
    "item_images",
    "pick_variant",
    "process_image",
    "remove_unused_variants",
    "render",
]

log = logging.getLogger("revenge.library.images")

VARIANT_WIDTHS = (120, 240, 360, 480, 720, 1080, 1920)
"""Widths made for every image (those narrower than the source, and the source's own width
when it is narrower than the widest): a client asking ``?w=`` gets the nearest one up."""
MAX_SOURCE_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 100_000_000
"""A decompression bomb (a tiny PNG that claims 50,000 x 50,000 pixels) is refused."""
WEBP_QUALITY = 80
CONTENT_TYPE = "image/webp"
_EXTRACT_TIMEOUT = 60.0
REMOTE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
"""Content types a remote image may have; anything else (an HTML error page...) is refused."""
DOWNLOAD_TIMEOUT = 60.0
"""Bound on one whole download (a server dripping a byte at a time is cut off too)."""


@dataclass(frozen=True, slots=True)
class ImageVariant:
    width: int
    height: int
    size: int
    file: str  # relative to the data folder's images/ directory


@dataclass(frozen=True, slots=True)
class Rendered:
    width: int
    height: int
    blurhash: str
    content_hash: bytes
    variants: tuple[ImageVariant, ...]


class ImageError(Exception):
    """The source could not be read or decoded (the reason is recorded on the row)."""


# --- blurhash (https://blurha.sh, the reference algorithm) ----------------------------------

_B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_TO_LINEAR = [
    (v / 255) / 12.92 if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4
    for v in range(256)
]


def _b83(value: int, length: int) -> str:
    return "".join(_B83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _to_srgb(value: float) -> int:
    v = min(1.0, max(0.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exp: float) -> float:
    return math.copysign(abs(value) ** exp, value)


def blurhash_rgb(pixels: bytes, width: int, height: int, x_comp: int = 4, y_comp: int = 3) -> str:
    """The blurhash of ``width x height`` packed RGB bytes (keep it small: 32 x 32 is plenty).

    >>> blurhash_rgb(bytes([255, 0, 0] * 16), 4, 4)  # plain red; as the reference encoder says
    'L~TI:j|cfQ|c|c$5fQ$5fQfQfQfQ'
    >>> len(blurhash_rgb(bytes(range(256)) * 12, 32, 32))
    28
    """
    if len(pixels) < width * height * 3 or not (1 <= x_comp <= 9 and 1 <= y_comp <= 9):
        raise ValueError("need width * height RGB pixels and 1-9 components each way")
    lin = _TO_LINEAR
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_comp)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_comp)]
    # separable sums: per row, the x-basis sums; then the y-basis over rows
    rows: list[list[tuple[float, float, float]]] = []
    for y in range(height):
        base = y * width * 3
        r = [lin[pixels[base + 3 * x]] for x in range(width)]
        g = [lin[pixels[base + 3 * x + 1]] for x in range(width)]
        b = [lin[pixels[base + 3 * x + 2]] for x in range(width)]
        rows.append(
            [
                (
                    sum(c * v for c, v in zip(cx, r, strict=True)),
                    sum(c * v for c, v in zip(cx, g, strict=True)),
                    sum(c * v for c, v in zip(cx, b, strict=True)),
                )
                for cx in cos_x
            ]
        )
    factors: list[tuple[float, float, float]] = []
    for j in range(y_comp):
        for i in range(x_comp):
            scale = (1 if i == 0 and j == 0 else 2) / (width * height)
            cy = cos_y[j]
            factors.append(
                (
                    scale * sum(cy[y] * rows[y][i][0] for y in range(height)),
                    scale * sum(cy[y] * rows[y][i][1] for y in range(height)),
                    scale * sum(cy[y] * rows[y][i][2] for y in range(height)),
                )
            )
    dc, ac = factors[0], factors[1:]
    out = _b83((x_comp - 1) + (y_comp - 1) * 9, 1)
    if ac:
        actual = max(abs(c) for f in ac for c in f)
        quantised = int(max(0, min(82, math.floor(actual * 166 - 0.5))))
        maximum = (quantised + 1) / 166
        out += _b83(quantised, 1)
    else:
        maximum = 1.0
        out += _b83(0, 1)
    out += _b83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for f in ac:
        q = [int(max(0, min(18, math.floor(_sign_pow(c / maximum, 0.5) * 9 + 9.5)))) for c in f]
        out += _b83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out


# --- rendering (blocking: run in a thread) ---------------------------------------------------


def render(data: bytes, images_dir: Path) -> Rendered:
    """Decode ``data``, write its variants under ``images_dir`` (content-addressed), blurhash it.

    Variants already on disk for the same content are reused (written once, never changed,
    so their ETag and ``immutable`` hold). Raises :class:`ImageError` for what cannot be
    decoded.
    """
    from PIL import Image, UnidentifiedImageError

    digest = hashlib.sha256(data).digest()
    name = digest.hex()
    folder = images_dir / name[:2] / name
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2  # Pillow refuses past twice this, at open
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width < 1 or height < 1:
                raise ImageError("an image without pixels")
            widths = [w for w in VARIANT_WIDTHS if w < width]
            if width < VARIANT_WIDTHS[-1]:
                widths.append(width)
            widest = widths[-1]
            # JPEG decodes at 1/2, 1/4, 1/8 scale for free when the widest variant is smaller
            img.draft("RGB", (widest, max(1, height * widest // width)))
            img.load()
            has_alpha = img.mode in ("RGBA", "LA", "PA") or (
                img.mode == "P" and "transparency" in img.info
            )
            full = img.convert("RGBA" if has_alpha else "RGB")
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageError(str(exc)[:300] or "not an image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt
        raise ImageError(f"cannot decode: {exc}"[:300]) from None
    variants: list[ImageVariant] = []
    fresh = not folder.is_dir()
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=images_dir)) if fresh else folder
    try:
        base = full
        for w in reversed(widths):  # each from the next wider: less to filter every step
            h = max(1, round(height * w / width))
            target = staging / f"{w}.webp"
            if not target.exists():
                small = base if (w, h) == base.size else base.resize(
                    (w, h), Image.Resampling.LANCZOS, reducing_gap=3.0
                )  # fmt: skip
                base = small
                buffer = io.BytesIO()
                small.save(buffer, "WEBP", quality=WEBP_QUALITY, method=4)
                _write_new(target, buffer.getvalue())
            variants.append(
                ImageVariant(w, h, target.stat().st_size, f"{name[:2]}/{name}/{w}.webp")
            )
        if fresh:
            folder.parent.mkdir(exist_ok=True)
            try:
                os.rename(staging, folder)
            except OSError:
                if not folder.is_dir():
                    raise
                # another worker made the same content meanwhile: keep theirs
                shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        if fresh:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    tiny = base.convert("RGB")
    tiny.thumbnail((32, 32), Image.Resampling.BILINEAR)
    hashed = blurhash_rgb(tiny.tobytes(), tiny.width, tiny.height)
    return Rendered(width, height, hashed, digest, tuple(sorted(variants, key=lambda v: v.width)))


def _write_new(target: Path, data: bytes) -> None:
    temp = target.with_name(f".{target.name}.{os.getpid()}")
    with open(temp, "wb") as fh:
        fh.write(data)
    os.replace(temp, target)


def _read_sidecar(path: bytes) -> bytes:
    try:
        with open(os.fsdecode(path), "rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise ImageError(f"cannot read the image: {exc.strerror or exc}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise ImageError(f"larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB")
    if not data:
        raise ImageError("an empty file")
    return data


async def _extract_embedded(ffmpeg: str, path: bytes, stream_index: int) -> bytes:
    """The attached picture's own bytes (JPEG or PNG), copied out by ffmpeg, never re-encoded."""
    argv, preexec = dying_with_parent([
        ffmpeg, "-nostdin", "-v", "error", "-i", os.fsdecode(path), "-map", f"0:{stream_index}",
        "-frames:v", "1", "-c", "copy", "-f", "image2pipe", "-",
    ])  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=preexec,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), _EXTRACT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ImageError(f"ffmpeg took longer than {_EXTRACT_TIMEOUT:g}s") from None
    if process.returncode != 0 or not out:
        lines = err.decode(errors="replace").strip().splitlines()
        raise ImageError(f"ffmpeg: {lines[-1] if lines else 'no picture'}"[:300])
    if len(out) > MAX_SOURCE_BYTES:
        raise ImageError(f"larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB")
    return out


async def download_image(url: str, *, max_bytes: int, deadline: float = DOWNLOAD_TIMEOUT) -> bytes:
    """A remote image's bytes: http(s) only, status 200, an image content type, at most
    ``max_bytes`` (read as it streams: a bigger body is cut off, never held whole)."""
    if not url.startswith(("https://", "http://")):
        raise ImageError("not an http(s) URL")
    try:
        async with (
            asyncio.timeout(deadline),
            httpx.AsyncClient(
                verify=await tls_context(), timeout=deadline, follow_redirects=True, max_redirects=3
            ) as client,
            client.stream("GET", url, headers={"accept": ", ".join(sorted(REMOTE_TYPES))}) as reply,
        ):
            if reply.status_code != 200:
                raise ImageError(f"the image server answered {reply.status_code}")
            try:
                data = await read_body(reply, types=REMOTE_TYPES, limit=max_bytes)
            except BodyRefused as exc:
                raise ImageError(
                    f"not an image: {exc}" if "type" in str(exc) else str(exc)
                ) from None
    except TimeoutError:
        raise ImageError(f"the download took longer than {deadline:g}s") from None
    except httpx.HTTPError as exc:
        raise ImageError(f"download failed: {type(exc).__name__}") from None
    if not data:
        raise ImageError("an empty image")
    return data


# --- the job -------------------------------------------------------------------------------

_LOAD = """
SELECT g.source, g.source_path, f.path, g.stream_index, g.source_size, g.source_mtime_ns,
       g.content_hash, g.status, g.source_url
  FROM images g LEFT JOIN media_files f ON f.id = g.file_id
 WHERE g.id = %s
"""


async def process_image(
    db: Database,
    images_dir: Path,
    image_id: int,
    *,
    ffmpeg: Callable[[], Awaitable[str]] | None = None,
    max_download: int = MAX_SOURCE_BYTES,
) -> str | None:
    """Make the variants and blurhash of image ``image_id``; its new status (None: row gone).

    ``ffmpeg()`` gives ffmpeg's path, asked for embedded cover art only (the playback
    module's cold transcoder is then spun up); ``max_download`` caps a remote image.
    """
    row = await db.fetch_one(_LOAD, (image_id,))
    if row is None:
        return None
    source, sidecar, video, stream_index, size, mtime_ns, _, _, url = row
    try:
        if source == "sidecar":
            data = await asyncio.to_thread(_read_sidecar, bytes(sidecar))
        elif source == "embedded" and video is not None and stream_index is not None:
            if ffmpeg is None:
                raise ImageError("no ffmpeg to read embedded cover art")
            data = await _extract_embedded(await ffmpeg(), bytes(video), int(stream_index))
        elif source == "remote" and url:
            data = await download_image(str(url), max_bytes=min(max_download, MAX_SOURCE_BYTES))
        else:
            raise ImageError(f"no readable source ({source})")
        await asyncio.to_thread(images_dir.mkdir, parents=True, exist_ok=True)
        rendered = await asyncio.to_thread(render, data, images_dir)
    except ImageError as exc:
        await db.execute(
            "UPDATE images SET status = 'failed', reason = %s WHERE id = %s",
            (str(exc), image_id),
        )
        return "failed"
    async with db.transaction() as conn:
        # only when the source is still the one read: a scan that saw it change meanwhile
        # set it pending again with the new size/mtime, and the next job does the work
        cur = await conn.execute(
            "UPDATE images SET status = 'ok', reason = NULL, width = %s, height = %s,"
            " blurhash = %s, content_hash = %s WHERE id = %s"
            " AND source_size IS NOT DISTINCT FROM %s"
            " AND source_mtime_ns IS NOT DISTINCT FROM %s",
            (rendered.width, rendered.height, rendered.blurhash, rendered.content_hash,
             image_id, size, mtime_ns),
        )  # fmt: skip
        if cur.rowcount == 0:
            return "pending"
        await conn.execute("DELETE FROM image_variants WHERE image_id = %s", (image_id,))
        async with conn.cursor() as many:
            await many.executemany(
                "INSERT INTO image_variants (image_id, width, height, size, content_type, file)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [(image_id, v.width, v.height, v.size, CONTENT_TYPE, v.file)
                 for v in rendered.variants],
            )  # fmt: skip
    return "ok"


async def pending_images(conn: Any, *, file_id: int | None = None) -> list[int]:
    """Ids of images waiting for ``images_process`` (of one media file when ``file_id``)."""
    if file_id is None:
        cur = await conn.execute("SELECT id FROM images WHERE status = 'pending' ORDER BY id")
    else:
        cur = await conn.execute(
            "SELECT id FROM images WHERE file_id = %s AND status = 'pending'", (file_id,)
        )
    return [int(r[0]) for r in await cur.fetchall()]


def embedded_kind(title: str | None) -> str:
    """Which artwork an attached picture is, from its title/file name (Matroska's convention:
    ``cover``, ``small_cover``, ``cover_land``, ``small_cover_land``).

    >>> embedded_kind("cover.jpg"), embedded_kind("cover_land.jpg"), embedded_kind(None)
    ('poster', 'fanart', 'poster')
    """
    lowered = (title or "").lower()
    if any(word in lowered for word in ("land", "fanart", "backdrop", "background")):
        return "fanart"
    return "poster"


async def record_embedded(
    conn: Any, file_id: int, item_id: int, covers: Iterable[tuple[int, str | None]]
) -> None:
    """Upsert one ``embedded`` image per (item, kind) from a probed file's attached pictures.

    ``covers``: (stream index, title) of each attached picture; a re-probe (the file changed)
    sets the row pending again, so its variants are remade.
    """
    rows: dict[str, int] = {}
    for index, title in covers:
        rows.setdefault(embedded_kind(title), index)
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO images (item_id, kind, source, file_id, stream_index, source_size,"
            " source_mtime_ns)"
            " SELECT %s, %s, 'embedded', f.id, %s, f.size, f.mtime_ns FROM media_files f"
            " WHERE f.id = %s"
            " ON CONFLICT (item_id, kind, source, coalesce(source_path, ''::bytea),"
            " coalesce(file_id, 0)) DO UPDATE SET stream_index = EXCLUDED.stream_index,"
            " source_size = EXCLUDED.source_size, source_mtime_ns = EXCLUDED.source_mtime_ns,"
            " status = CASE WHEN images.source_size IS DISTINCT FROM EXCLUDED.source_size"
            "   OR images.source_mtime_ns IS DISTINCT FROM EXCLUDED.source_mtime_ns"
            "   OR images.stream_index IS DISTINCT FROM EXCLUDED.stream_index"
            "   THEN 'pending' ELSE images.status END",
            [(item_id, kind, index, file_id) for kind, index in rows.items()],
        )
    await conn.execute(
        "DELETE FROM images WHERE file_id = %s AND source = 'embedded' AND NOT kind = ANY(%s)",
        (file_id, list(rows)),
    )


# --- reads ---------------------------------------------------------------------------------


def image_url(image_id: int, version: str | None) -> str:
    """An image's URL: ``?v=`` the first 16 hex digits of its content hash, so the URL
    changes when the picture does and a client may cache it for good (the image route
    answers ``immutable`` only when ``v`` names the current content). An image not yet
    processed has no version: its bare URL is revalidated.

    >>> image_url(12, "00ff00ff00ff00ff"), image_url(12, None)
    ('/api/v1/images/12?v=00ff00ff00ff00ff', '/api/v1/images/12')
    """
    return f"/api/v1/images/{image_id}" + (f"?v={version}" if version else "")


def image_version_sql(alias: str) -> str:
    """SQL for an image row's version (as :func:`image_url` takes it; NULL while pending)."""
    return f"encode(substr({alias}.content_hash, 1, 8), 'hex')"


def image_url_sql(alias: str) -> str:
    """SQL for :func:`image_url` of image row ``alias`` (a page renders its URLs in SQL)."""
    return f"'/api/v1/images/' || {alias}.id || coalesce('?v=' || {image_version_sql(alias)}, '')"


@dataclass(frozen=True, slots=True)
class ImageRef:
    """What a list or detail answer shows of an item's image (browse)."""

    id: int
    item_id: int
    kind: str
    width: int
    height: int
    blurhash: str
    version: str  # first 16 hex digits of the content hash: ?v= in the URL

    @property
    def url(self) -> str:
        """The image's URL; ``v`` changes with the content, so ``immutable`` caching holds."""
        return image_url(self.id, self.version)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "width": self.width, "height": self.height,
                "blurhash": self.blurhash, "url": self.url}  # fmt: skip


_SOURCE_RANK = "CASE g.source WHEN 'sidecar' THEN 0 WHEN 'embedded' THEN 1 ELSE 2 END"


async def item_images(
    conn: psycopg.AsyncConnection[Any], item_ids: Sequence[int]
) -> dict[int, dict[str, ImageRef]]:
    """The processed images of these items: ``{item_id: {kind: ImageRef}}``, one per kind
    (a sidecar before embedded cover art before a remote one). One query for a whole page."""
    if not item_ids:
        return {}
    cur = await conn.execute(
        "SELECT DISTINCT ON (g.item_id, g.kind) g.id, g.item_id, g.kind, g.width, g.height,"  # noqa: S608
        f" g.blurhash, {image_version_sql('g')}"
        " FROM images g WHERE g.item_id = ANY(%s) AND g.status = 'ok'"
        f" ORDER BY g.item_id, g.kind, {_SOURCE_RANK}, g.id",
        (list(item_ids),),
    )
    found: dict[int, dict[str, ImageRef]] = {}
    for r in await cur.fetchall():
        ref = ImageRef(int(r[0]), int(r[1]), r[2], int(r[3]), int(r[4]), r[5], r[6])
        found.setdefault(ref.item_id, {})[ref.kind] = ref
    return found


def pick_variant(widths: Sequence[int], wanted: int | None) -> int:
    """The narrowest variant at least ``wanted`` wide, else the widest (no ``wanted``: widest).

    >>> pick_variant([120, 240, 480], 200), pick_variant([120, 240, 480], 4000)
    (240, 480)
    >>> pick_variant([120, 240, 480], None), pick_variant([120, 240, 480], 1)
    (480, 120)
    """
    ordered = sorted(widths)
    if wanted is None:
        return ordered[-1]
    return next((w for w in ordered if w >= wanted), ordered[-1])


def remove_unused_variants(images_dir: Path, used: set[str], *, min_age: float = 3600.0) -> int:
    """Delete content folders no image row names any more (blocking; the cleanup job's).

    ``used``: hex content hashes still referenced. Folders younger than ``min_age`` seconds
    stay: a job may have written one and not yet committed its row.
    """
    removed = 0
    now = time.time()
    if not images_dir.is_dir():
        return 0
    for prefix in os.scandir(images_dir):
        if not prefix.is_dir(follow_symlinks=False):
            continue
        if prefix.name.startswith(".tmp-"):  # a render that died before its rename
            if _older(prefix, now, min_age):
                shutil.rmtree(prefix.path, ignore_errors=True)
            continue
        for entry in os.scandir(prefix.path):
            name = entry.name
            if name in used or not entry.is_dir(follow_symlinks=False):
                continue
            if _older(entry, now, min_age):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    return removed


def _older(entry: os.DirEntry[str], now: float, min_age: float) -> bool:
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime >= min_age
    except OSError:
        return False
