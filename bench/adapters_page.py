"""How fast the Adapters page fills and answers with 1,000 registered versions (offscreen Qt).

    QT_QPA_PLATFORM=offscreen python bench/adapters_page.py [--names 50] [--versions 20]
        [--repeat 20] [--out bench/results/adapters_page.md]

Registers ``names x versions`` versions through ``Registry.add`` (the same small, real PEFT
folder layouts as bench/registry_scale.py), builds the page in a shown window and times,
median and max over ``--repeat`` runs:

* **fill**: from ``AdaptersPage.refresh()`` to the table holding every row (the registry is
  listed on a pool thread, the rows handed to the model on the GUI thread), then the
  table's first paint (``repaint``): what a person waits for when the page opens;
* **longest GUI-thread stall during a fill**: the GUI thread's share, since the listing
  itself runs off it (the page stays responsive while it runs);
* **details of one version** (its folder, history and gates read on the GUI thread);
* **compare two versions** (two folders, the diff, the tables and both charts);
* **filter** (one word typed into the filter box, over 1,000 rows).

The issue's bar is a page fill under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.registry_scale import make_source  # noqa: E402


def stats(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.0f} ms median, {max(times) * 1000:.0f} ms max"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=50)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/adapters_page.md")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LORA_STUDIO_HOME"] = str(Path(tmp) / "home")
        from PySide6.QtCore import QEventLoop, QTimer
        from PySide6.QtWidgets import QApplication

        from app.adapters_page import AdaptersPage
        from app.session import Session
        from backend.registry.registry import Registry

        app = QApplication([])
        rng = random.Random(0)
        sources = [make_source(Path(tmp) / "src" / f"s{i}", rng, rng.choice([4, 8, 16, 32])) for i in range(40)]
        registry = Registry()
        start = time.perf_counter()
        for n in range(args.names):
            for _ in range(args.versions):
                registry.add(rng.choice(sources), f"adapter-{n:03d}")
        total = args.names * args.versions
        print(f"registered {total} versions in {time.perf_counter() - start:.1f} s", flush=True)

        page = AdaptersPage(Session(), registry=registry)
        page.resize(1400, 800)
        page.show()
        app.processEvents()

        stalls: list[float] = []
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            stalls.append(now - last[0])
            last[0] = now

        probe = QTimer(interval=1)
        probe.timeout.connect(tick)

        def fill() -> float:
            loop = QEventLoop()
            page.filled.connect(loop.quit)
            began = time.perf_counter()
            page.refresh()
            loop.exec()
            page.filled.disconnect(loop.quit)
            page.table.repaint()
            assert page.proxy.rowCount() == total, page.proxy.rowCount()
            return time.perf_counter() - began

        fill()  # the first fill builds the index from the folders' signatures
        fills, worst_stalls = [], []
        for _ in range(args.repeat):
            stalls.clear()
            last[0] = time.perf_counter()
            probe.start()
            fills.append(fill())
            probe.stop()
            worst_stalls.append(max(stalls, default=0.0))

        def timed(*actions: Callable[[], None]) -> list[float]:
            times = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                for action in actions:
                    action()
                app.processEvents()
                times.append(time.perf_counter() - began)
            return times

        pair = [("adapter-007", 3), ("adapter-007", 17)]
        details = timed(page.select, lambda: page.select(pair[0]))
        compare = timed(page.select, lambda: page.select(*pair))
        assert len(page.charts["heldout_loss"].points) == args.versions
        filtering = timed(lambda: page.filter.setText("adapter-04"), lambda: page.filter.setText(""))

        lines = [
            "# Adapters page with 1,000 versions",
            "",
            f"`python bench/adapters_page.py --names {args.names} --versions {args.versions} --repeat {args.repeat}`,"
            " offscreen Qt, on "
            f"{platform.machine()} with {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} while measured;"
            f" other engineers' tests share the machine), Python {platform.python_version()}.",
            "",
            f"{total} versions of {args.names} named adapters; each number is over {args.repeat} runs.",
            "",
            "| What | Time |",
            "|---|---|",
            f"| Page fill: refresh() to every row in the table and painted | {stats(fills)} |",
            f"| Longest GUI-thread stall during a fill (listing runs on a pool thread) | {stats(worst_stalls)} |",
            f"| Details of one version (folder, history, gates) | {stats(details)} |",
            f"| Compare two versions (diff, tables, two charts of 20 versions) | {stats(compare)} |",
            f"| Filter typed and cleared over {total} rows | {stats(filtering)} |",
            "",
            f"The issue's bar, a page fill under 200 ms: {'met' if max(fills) < 0.2 else 'NOT met'} "
            f"(max {max(fills) * 1000:.0f} ms).",
        ]
        text = "\n".join(lines) + "\n"
        print(text)
        args.out.write_text(text, encoding="utf-8")
        page.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
