"""The report's FreeBSD notes warn about the D33144 tree's use-after-free (issue 10, defect 8)."""
from __future__ import annotations

from pathlib import Path

from tracer.view import report
from tracer.analysis.compare import load_models

FREEBSD = Path(__file__).parent / "data" / "freebsd"


def test_sources_note_warns_about_the_d33144_use_after_free_for_reap_runs_only_since_only_reap_jobs_take_that_path():
    reap = load_models([FREEBSD / "reap"])
    kevent = load_models([FREEBSD / "kevent"])
    assert reap and kevent
    note = report.sources_note(reap)
    assert "aio_bio_done_notify" in note and "aio_free_entry" in note and "33a47467" in note
    assert "aio_bio_done_notify" not in report.sources_note(kevent)


def test_readme_freebsd_section_carries_the_warning():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    freebsd = readme.split("## FreeBSD", 1)[1].split("\n## ", 1)[0]
    assert "use-after-free" in freebsd and "aio_bio_done_notify" in freebsd and "33a47467" in freebsd
