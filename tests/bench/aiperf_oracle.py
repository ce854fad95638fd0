"""Check an export directory with AIPerf 0.13's own readers (an oracle, not a test).

AIPerf is not a dependency of this project (a 1.2 GB venv), so this is run by hand with
the interpreter of a throwaway venv that has it::

    python3 -m venv /tmp/aiperf-venv && /tmp/aiperf-venv/bin/pip install 'aiperf>=0.13,<0.14'
    nimble bench --endpoint URL --requests 50 --export /tmp/run
    /tmp/aiperf-venv/bin/python tests/bench/aiperf_oracle.py /tmp/run

It validates ``profile_export_aiperf.json`` with AIPerf's ``JsonExportData`` model, every
``profile_export.jsonl`` line with its ``MetricRecordInfo`` model, and loads the directory
with the data loader ``aiperf plot`` uses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: Path) -> None:
    from aiperf.common.models.export_models import JsonExportData
    from aiperf.common.models.record_models import MetricRecordInfo
    from aiperf.plot.core.data_loader import DataLoader

    summary = JsonExportData.model_validate(
        json.loads((path / "profile_export_aiperf.json").read_text())
    )
    print(f"JsonExportData: ok (request_count {summary.request_count})")
    lines = (path / "profile_export.jsonl").read_text().splitlines()
    for line in lines:
        MetricRecordInfo.model_validate_json(line)
    print(f"MetricRecordInfo: {len(lines)} records ok")
    run = DataLoader().load_run(path)
    shape = None if run.requests is None else run.requests.shape
    print(f"aiperf plot's DataLoader.load_run: ok, per-request frame {shape}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
