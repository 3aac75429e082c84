"""OPD queue: tokens issued per second over real HTTP (the queue app under uvicorn, kiosk credential, one queue),
on SQLite and on PostgreSQL.

    python bench/queue_tokens.py [--db sqlite|postgresql|both|<URL>] [--tokens 2000] [--clients 16] [--json out.json]

Each client is a thread with its own keep-alive connection, issuing tokens for
distinct mobiles to the same queue (the worst case: every issue takes the same
queue-day's counter row). Afterwards the numbers are checked gapless and unique.
No hub is needed (kiosk credential); the hub URL given to the app is never called.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from records_bridge.services.queue.app import create_app
from records_bridge.services.sms import LogGateway

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from records_db_support import records_database  # noqa: E402



def run(url: str, tokens: int, clients: int, tmp: Path) -> dict[str, Any]:
    app = create_app(url, hub_url="http://127.0.0.1:9", sms=LogGateway(tmp / "sms.jsonl"))
    store = app.state.store
    store.put_facility("bench", "Bench PHC")
    store.put_department("opd", "bench", "OPD")
    store.put_queue("med", "opd", "Medicine", prefix="MED")
    kiosk = store.add_credential("kiosk", "bench", "kiosk")
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    latencies: list[float] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        mine = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, headers={"Authorization": f"Bearer {kiosk}"}) as http:
            for i in range(c, tokens, clients):
                t0 = time.perf_counter()
                r = http.post("/api/kiosk/tokens", json={"queue_id": "med", "mobile": f"9{i:09d}"})
                mine.append(time.perf_counter() - t0)
                r.raise_for_status()
        with lock:
            latencies.extend(mine)

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
        wall = time.perf_counter() - start
        day = store.today("bench")
        numbers = [n for n, _k, _s in store.count_tokens("med", day)]
        assert numbers == list(range(1, tokens + 1)), "numbers are not gapless and unique"
    finally:
        server.should_exit = True
        thread.join(15)
    lat = sorted(latencies)
    return {"backend": app.state.engine.dialect.name, "tokens": tokens, "clients": clients, "seconds": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1), "p50_ms": round(statistics.median(lat) * 1000, 1),
            "p99_ms": round(lat[int(len(lat) * 0.99) - 1] * 1000, 1), "gapless": True}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="both", help="sqlite, postgresql, both, or a database URL")
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = []
    for kind in kinds:
        with tempfile.TemporaryDirectory() as d, records_database(kind, Path(d), prefix="queue_bench") as url:
            res = run(url, args.tokens, args.clients, Path(d))
        print(json.dumps(res), flush=True)
        results.append(res)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
