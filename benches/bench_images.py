"""Pillow against pyvips for ``images_process``: resized WebP variants and a blurhash.

    python benches/bench_images.py                 # both libraries, 5 rounds each
    python benches/bench_images.py --rounds 10

The sources are made by ffmpeg (``testsrc2``): a 2000x3000 JPEG poster and a 3840x2160 PNG
fanart, the sizes artwork sites hand out. Each round does what the job does for one image:
decode, every variant width up to the source's (WebP, quality 80, written to a file) and a
4x3 blurhash from a 32 px thumbnail. Each library runs in its own child process so its peak
RSS (``ru_maxrss``) is its own. The answers are checked before timing (same variant widths,
blurhashes of the same length). Printed: median and best seconds per image per library, the
ratio, peak RSS; raw lines go to ``benches/results/images.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

WIDTHS = (120, 240, 360, 480, 720, 1080, 1920)


def _pillow(src: Path, out: Path) -> tuple[list[int], str]:
    from revenge.modules.library.images import render

    done = render(src.read_bytes(), out)  # what images_process runs
    return [v.width for v in done.variants], done.blurhash


def _pyvips(src: Path, out: Path) -> tuple[list[int], str]:
    import pyvips

    from revenge.modules.library.images import VARIANT_WIDTHS, blurhash_rgb

    data = src.read_bytes()
    width = pyvips.Image.new_from_buffer(data, "").width
    widths = [w for w in VARIANT_WIDTHS if w < width]
    if width < VARIANT_WIDTHS[-1]:
        widths.append(width)
    # shrink-on-load to the widest variant once, then resize that in memory
    widest = pyvips.Image.thumbnail_buffer(data, widths[-1], height=100000).copy_memory()
    made: list[int] = []
    for w in widths:
        img = widest if w == widest.width else widest.resize(w / widest.width, kernel="lanczos3")
        img.webpsave(str(out / f"{w}.webp"), Q=80)
        made.append(w)
    tiny = widest.thumbnail_image(32, height=32)
    tiny = tiny.colourspace("srgb")[:3]
    return made, blurhash_rgb(bytes(tiny.write_to_memory()), tiny.width, tiny.height)


def child(lib: str, rounds: int, sources: list[str]) -> None:
    fn = _pillow if lib == "pillow" else _pyvips
    times: list[float] = []
    cpu: list[float] = []
    answers = []
    for _ in range(rounds + 1):  # the first is a warm-up (imports, codec set-up)
        for src in sources:
            with tempfile.TemporaryDirectory() as out:
                t0, c0 = time.perf_counter(), time.process_time()
                made, hashed = fn(Path(src), Path(out))
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                answers.append((made, len(hashed)))
    times, cpu = times[len(sources) :], cpu[len(sources) :]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "lib": lib,
                "times": times,
                "cpu": cpu,
                "peak_mb": peak,
                "answers": answers[: len(sources)],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child")
    parser.add_argument("sources", nargs="*")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rounds, args.sources)
        return
    with tempfile.TemporaryDirectory() as tmp:
        poster, fanart = Path(tmp, "poster.jpg"), Path(tmp, "fanart.png")
        for size, path in (("2000x3000", poster), ("3840x2160", fanart)):
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                 f"testsrc2=size={size}", "-frames:v", "1", str(path)],
                check=True,
            )  # fmt: skip
        results = {}
        for lib in ("pillow", "pyvips"):
            line = subprocess.run(
                [sys.executable, __file__, "--child", lib, "--rounds", str(args.rounds),
                 str(poster), str(fanart)],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            results[lib] = json.loads(line)
    assert results["pillow"]["answers"] == results["pyvips"]["answers"], results
    lines = [f"load average {os.getloadavg()[0]:.2f} (a shared machine: absolute times inflated)"]
    med, cpu = {}, {}
    for lib, r in results.items():
        med[lib] = statistics.median(r["times"])
        cpu[lib] = statistics.median(r["cpu"])
        poster, fanart = r["times"][0::2], r["times"][1::2]
        lines.append(
            f"{lib}: median {med[lib] * 1000:.0f} ms wall, {cpu[lib] * 1000:.0f} ms CPU per image"
            f" (poster 2000x3000 JPEG {statistics.median(poster) * 1000:.0f} ms, fanart 3840x2160"
            f" PNG {statistics.median(fanart) * 1000:.0f} ms), peak RSS {r['peak_mb']:.0f} MB"
        )
    lines.append(
        f"pyvips / pillow median: wall {med['pyvips'] / med['pillow']:.2f},"
        f" CPU {cpu['pyvips'] / cpu['pillow']:.2f}"
    )
    print("\n".join(lines))
    results_dir = Path(__file__).parent / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "images.txt").write_text("\n".join(lines) + "\n" + json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
