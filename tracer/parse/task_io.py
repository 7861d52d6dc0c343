"""``raw/task_io.tsv``: a foreign program's per-thread /proc io counters over the capture window
(written by tracer.capture.target.TaskIoSampler; its first line says how complete they are)."""
from __future__ import annotations

from pathlib import Path


def read_task_io_file(path: Path):
    """raw/task_io.tsv as a DataFrame (None when absent)."""
    import pandas as pd
    if not Path(path).is_file():
        return None
    return pd.read_csv(path, sep="\t", skiprows=1, dtype={"comm": "string"}, keep_default_na=False)
