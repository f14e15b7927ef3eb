"""Load on `andini serve`: N concurrent clients on loopback, bounded in requests and in time.

Starts a real server (local backend, its own temporary ANDINI_HOME, rate limit lifted), runs a mix of
API calls from N client threads, and prints requests/s, p50/p95 latency and errors per operation. Then it
checks the task store: every task a client created is there exactly once (nothing lost, nothing
duplicated), through the API and straight from the SQLite file.

    .venv/bin/python benchmarks/bench_api_load.py --clients 8 --requests 50
    .venv/bin/python benchmarks/bench_api_load.py --clients 4 --runs 2   # plus a few real agent turns

Traffic goes only to 127.0.0.1; every loop stops after --requests per client or --seconds overall.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from api_support import ApiServer  # noqa: E402  (the tests' server launcher: one way to start it)

#: The mix each client cycles through: mostly writes and reads of the task store.
MIX = ("create_task", "list_tasks", "get_task", "create_task", "search", "health")


class Recorder:
    """Latencies and failures per operation, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.why: dict[str, set[str]] = defaultdict(set)
        self.created: list[tuple[int, str]] = []

    def record(self, op: str, seconds: float, ok: bool, why: str = "") -> None:
        with self.lock:
            self.latency[op].append(seconds)
            if not ok:
                self.errors[op] += 1
                self.why[op].add(why)


def one_call(client: httpx.Client, op: str, client_no: int, i: int, rec: Recorder) -> None:
    start = time.perf_counter()
    title = f"load c{client_no} #{i}"
    expected = {"create_task": (201,), "get_task": (200, 404)}.get(op, (200,))
    try:
        answer = request(client, op, title, rec)
        ok, why = answer.status_code in expected, f"HTTP {answer.status_code}"
        if ok and op == "create_task":
            with rec.lock:
                rec.created.append((answer.json()["id"], title))
        if ok and op == "run" and answer.json()["status"] == "error":
            ok, why = False, "run status error"
    except httpx.HTTPError as exc:
        ok, why = False, type(exc).__name__
    rec.record(op, time.perf_counter() - start, ok, why)


def request(client: httpx.Client, op: str, title: str, rec: Recorder) -> httpx.Response:
    if op == "create_task":
        return client.post("/v1/tasks", json={"title": title, "detail": "bench"})
    if op == "list_tasks":
        return client.get("/v1/tasks")
    if op == "get_task":
        with rec.lock:
            task_id = rec.created[-1][0] if rec.created else 1
        return client.get(f"/v1/tasks/{task_id}")
    if op == "search":
        return client.get("/v1/search", params={"q": "deploy the api"})
    if op == "run":
        return client.post("/v1/runs", json={"intent": "Make a two-step plan to tidy my desk."}, timeout=600)
    return client.get("/health")


def client_loop(server: ApiServer, client_no: int, requests: int, deadline: float, rec: Recorder) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
        for i in range(requests):
            if time.monotonic() > deadline:
                return
            one_call(client, MIX[(client_no + i) % len(MIX)], client_no, i, rec)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def table(rec: Recorder, wall: float) -> list[dict]:
    rows = []
    for op in sorted(rec.latency):
        values = rec.latency[op]
        rows.append({"operation": op, "requests": len(values), "errors": rec.errors[op],
                     "req_per_s": len(values) / wall, "p50_ms": 1000 * percentile(values, 50),
                     "p95_ms": 1000 * percentile(values, 95)})
    every = [v for values in rec.latency.values() for v in values]
    rows.append({"operation": "ALL", "requests": len(every), "errors": sum(rec.errors.values()),
                 "req_per_s": len(every) / wall, "p50_ms": 1000 * percentile(every, 50),
                 "p95_ms": 1000 * percentile(every, 95)})
    return rows


def check_store(server: ApiServer, rec: Recorder) -> dict:
    """Every created task exactly once, via the API and via the SQLite file itself."""
    from agent.tasks import TaskStore

    listed = httpx.get(f"{server.url}/v1/tasks", headers=server.headers, timeout=60).json()
    stored = TaskStore(server.home / "agent.db").list()
    created_ids = sorted(task_id for task_id, _ in rec.created)
    created_titles = sorted(title for _, title in rec.created)
    return {
        "created": len(rec.created),
        "listed_by_api": len(listed),
        "stored_in_sqlite": len(stored),
        "ids_unique": len(set(created_ids)) == len(created_ids),
        "api_matches": sorted(t["id"] for t in listed) == created_ids
        and sorted(t["title"] for t in listed) == created_titles,
        "sqlite_matches": sorted(t.id for t in stored) == created_ids
        and sorted(t.title for t in stored) == created_titles,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="Concurrent client threads.")
    parser.add_argument("--requests", type=int, default=50, help="Requests per client (upper bound).")
    parser.add_argument("--seconds", type=float, default=120, help="Overall time bound for the load phase.")
    parser.add_argument("--runs", type=int, default=0, help="Also run this many real agent turns (local model).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of a table.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="andini-bench-") as tmp, \
            ApiServer(Path(tmp), api_rate_limit="1000000/second", backend="local") as server:
        warm_start = time.perf_counter()  # the first search opens Chroma: not part of steady state
        httpx.get(f"{server.url}/v1/search", params={"q": "warm up"}, headers=server.headers, timeout=300)
        warm_up = time.perf_counter() - warm_start
        rec = Recorder()
        deadline = time.monotonic() + args.seconds
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients + (1 if args.runs else 0)) as pool:
            futures = [pool.submit(client_loop, server, n, args.requests, deadline, rec) for n in range(args.clients)]
            if args.runs:
                futures.append(pool.submit(run_turns, server, args.runs, deadline, rec))
            for future in futures:
                future.result()
        wall = time.perf_counter() - start
        rows, store = table(rec, wall), check_store(server, rec)

    report = {"clients": args.clients, "requests_per_client": args.requests, "wall_s": wall, "warm_up_s": warm_up,
              "operations": rows, "task_store": store,
              "error_kinds": {op: sorted(kinds) for op, kinds in rec.why.items()}}
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0 if store["api_matches"] and store["sqlite_matches"] and store["ids_unique"] else 1


def run_turns(server: ApiServer, turns: int, deadline: float, rec: Recorder) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=600) as client:
        for i in range(turns):
            if time.monotonic() > deadline:
                return
            one_call(client, "run", -1, i, rec)


def print_table(report: dict) -> None:
    print(f"{report['clients']} clients x up to {report['requests_per_client']} requests, "
          f"{report['wall_s']:.1f} s wall after a {report['warm_up_s']:.1f} s warm-up, local backend, 127.0.0.1, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print(f"| {'operation':<12} | {'requests':>8} | {'errors':>6} | {'req/s':>7} | {'p50 ms':>7} | {'p95 ms':>7} |")
    print(f"|{'-' * 14}|{'-' * 10}:|{'-' * 8}:|{'-' * 9}:|{'-' * 9}:|{'-' * 9}:|")
    for r in report["operations"]:
        print(f"| {r['operation']:<12} | {r['requests']:>8} | {r['errors']:>6} | {r['req_per_s']:>7.1f} | "
              f"{r['p50_ms']:>7.1f} | {r['p95_ms']:>7.1f} |")
    for op, kinds in report["error_kinds"].items():
        print(f"errors in {op}: {', '.join(kinds)}")
    store = report["task_store"]
    print(f"\ntask store: {store['created']} created, {store['listed_by_api']} listed by the API, "
          f"{store['stored_in_sqlite']} in SQLite; ids unique: {store['ids_unique']}; "
          f"API matches: {store['api_matches']}; SQLite matches: {store['sqlite_matches']}")


if __name__ == "__main__":
    sys.exit(main())
