"""The command line of a benchmark made of parts: ``python bench/<name>.py [ROUNDS] [PART ...]``
runs each part in a fresh temporary folder and merges its result (and its seconds) into
bench/results/<name>.json, so that parts can be measured again one at a time."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def run_parts(name: str, parts: dict[str, Callable[[Path, int], dict]], rounds: int) -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else rounds
    chosen = sys.argv[2:] or list(parts)
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    result = json.loads(path.read_text()) if path.exists() else {}
    result |= {"rounds": rounds, "date": time.strftime("%Y-%m-%d")}
    for part in chosen:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result[part] = parts[part](Path(tmp), rounds)
            result[part + "_s"] = time.perf_counter() - t0
            print(part, json.dumps(result[part], indent=1, default=str), flush=True)
        path.write_text(json.dumps(result, indent=2, default=str))
