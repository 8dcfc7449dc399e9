"""A soak test: 4 clients for a few minutes against the app in its own process on 127.0.0.1, mixing reconstruct,
both attention views and training status. Every answer must be correct (a call may wait in the queue, never
fail), and the app process's memory, open files, threads and temporary folders must stay flat.

``INT_SOAK_SECONDS`` sets how long the load runs (default 150 s; bounded as well by ``MAX_CALLS``), and
``INT_SOAK_REPORT`` a JSON file for the figures (the README's soak table comes from such a run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support import free_port

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "studio" / "examples" / "one-walker.mp4"
CLIENTS = 4
SECONDS = float(os.environ.get("INT_SOAK_SECONDS", "150"))
MAX_CALLS = 400
#: The app cuts the example to this many frames, so that one reconstruction is a few seconds of two cores.
FRAMES = 24
#: Growth allowed from the sample a third into the load (the model, window and allocator caches filled by then)
#: to the end, for each process measure.
RSS_GROWTH_MB = 150.0
FD_GROWTH = 8
THREAD_GROWTH = 8


@dataclass
class Sample:
    t: float
    rss_mb: float
    fds: int
    threads: int
    session_folders: int
    output_files: int
    upload_files: int


@dataclass
class Load:
    calls: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, seconds: float, failure: str | None) -> None:
        with self.lock:
            self.calls[op] = self.calls.get(op, 0) + 1
            self.seconds.setdefault(op, []).append(seconds)
            if failure:
                self.failures.append(f"{op}: {failure}")

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.calls.values())


def _count_files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def _sample(pid: int, outputs: Path, uploads: Path, start: float) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    field_of = {line.split(":")[0]: line.split(":")[1].strip() for line in status.splitlines() if ":" in line}
    sessions = outputs / "sessions"
    return Sample(t=round(time.monotonic() - start, 1), rss_mb=round(int(field_of["VmRSS"].split()[0]) / 1024, 1),
                  fds=len(os.listdir(f"/proc/{pid}/fd")), threads=int(field_of["Threads"]),
                  session_folders=sum(1 for p in sessions.iterdir() if p.is_dir()) if sessions.is_dir() else 0,
                  output_files=_count_files(outputs), upload_files=_count_files(uploads))


def _check(op: str, out) -> str | None:
    """Why an answer is wrong, or None."""
    if op == "reconstruct":
        summary = out[2]
        return None if summary.startswith("### ok") and "1 (" in summary else f"summary {summary[:120]!r}"
    if op == "image_attention":
        return None if "left_knee" in out[4] or "token" in out[4].lower() else f"summary {out[4][:120]!r}"
    if op == "temporal_attention":
        return None if "right_knee" in out[6] or "joint" in out[6].lower() else f"summary {out[6][:120]!r}"
    return None if out[0].startswith("### ") else f"status {out[0][:120]!r}"


OPS = ("reconstruct", "train_status", "image_attention", "train_status", "temporal_attention")


def _one_call(url: str, op: str) -> str | None:
    """One call of ``op`` in a new session (closed, and so unloaded, afterwards); why it failed, or None."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    try:
        clip = handle_file(str(EXAMPLE))
        if op == "reconstruct":
            out = client.predict(clip, api_name="/reconstruct")
        elif op == "image_attention":
            out = client.predict(clip, "longest", -1, "left_knee", -1, "mean", False, api_name="/image_attention")
        elif op == "temporal_attention":
            out = client.predict(clip, "longest", 0, 16, "right_knee", api_name="/temporal_attention")
        else:
            out = client.predict(api_name="/train_status")
        return _check(op, out)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and fails the test
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()


def _worker(index: int, url: str, deadline: float, load: Load) -> None:
    step = index
    while time.monotonic() < deadline and load.total < MAX_CALLS:
        op = OPS[step % len(OPS)]
        step += 1
        started = time.monotonic()
        failure = _one_call(url, op)
        load.record(op, time.monotonic() - started, failure)


@pytest.mark.slow
def test_four_clients_for_minutes_leave_the_app_flat(tmp_path: Path) -> None:
    outputs, uploads = tmp_path / "outputs", tmp_path / "gradio"
    port = free_port()
    env = {**os.environ, "INT_STUDIO_OUTPUTS": str(outputs), "INT_RUNS_ROOT": str(tmp_path / "runs"),
           "INT_DATA_ROOT": str(tmp_path / "data"), "INT_MAX_FRAMES": str(FRAMES), "GRADIO_TEMP_DIR": str(uploads),
           "GRADIO_ANALYTICS_ENABLED": "False", "MALLOC_ARENA_MAX": "2"}  # as make app runs it
    log = (tmp_path / "app.log").open("w")
    process = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)], cwd=REPO,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.5)

        start = time.monotonic()
        load = Load()
        # Warm-up: one round of every kind of call (models loaded, caches filled), then the baseline.
        for op in dict.fromkeys(OPS):
            assert _one_call(url, op) is None, op
        samples = [_sample(process.pid, outputs, uploads, start)]
        stop = time.monotonic() + SECONDS
        threads = [threading.Thread(target=_worker, args=(i, url, stop, load), daemon=True) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            time.sleep(5.0)
            samples.append(_sample(process.pid, outputs, uploads, start))
        # Closed sessions are unloaded when their heartbeat ends: let that settle.
        deadline = time.monotonic() + 30
        while _sample(process.pid, outputs, uploads, start).session_folders and time.monotonic() < deadline:
            time.sleep(1.0)
        final = _sample(process.pid, outputs, uploads, start)
        samples.append(final)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()

    baseline = next(s for s in samples if s.t >= samples[0].t + SECONDS / 3)
    report = {
        "clients": CLIENTS, "seconds": SECONDS, "frames_per_clip": FRAMES, "calls": load.calls,
        "failures": load.failures[:10],
        "median_s": {op: round(sorted(v)[len(v) // 2], 2) for op, v in load.seconds.items()},
        "max_s": {op: round(max(v), 2) for op, v in load.seconds.items()},
        "after_warm_up": samples[0].__dict__, "baseline": baseline.__dict__, "peak_rss_mb": max(s.rss_mb for s in samples), "final": final.__dict__,
        "samples": [s.__dict__ for s in samples],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=1))
    if os.environ.get("INT_SOAK_REPORT"):
        Path(os.environ["INT_SOAK_REPORT"]).write_text(json.dumps(report, indent=1))
    assert not load.failures, load.failures[:10]
    assert load.calls.get("reconstruct", 0) >= CLIENTS and load.calls.get("temporal_attention", 0) >= 1, load.calls
    assert final.rss_mb - baseline.rss_mb <= RSS_GROWTH_MB, report
    assert final.fds - baseline.fds <= FD_GROWTH, report
    assert final.threads - baseline.threads <= THREAD_GROWTH, report
    assert final.session_folders == 0, report  # every closed session's outputs are gone
    # Gradio keeps each upload in its cache (an hour: the app's delete_cache), so they grow with the calls, no more.
    assert final.upload_files <= samples[0].upload_files + 2 * sum(load.calls.values()), report
