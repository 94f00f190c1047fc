"""The soak's short form (benches/soak.py; the full 10 minutes is ``just soak``).

Twenty seconds of mixed traffic against ``revenge serve --workers 2`` after a
warm-up: every request answered as expected, and once idle again the server's
descriptors (per process) and its database's connections are back to what they
were idle before the soak. RSS is sampled every second and its growth printed;
judged only by the full run (twenty seconds says little about a slow leak).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from benches.soak import soak

from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.e2e


def test_short_soak_leaks_nothing(tmp_path: Path, fresh_pg_url: str) -> None:
    report = soak(fresh_pg_url, PG_ADMIN_URL, tmp_path, duration=20, warm_up=3, threads=3)
    print("\n" + "\n".join(report.render()))
    assert {a.route for a in report.answers} >= {"me", "sessions", "search", "job", "login"}
    assert not report.unexpected(), report.unexpected()[:5]
    assert not report.leaks()
    assert len(report.samples) >= 20  # sampled every second throughout
