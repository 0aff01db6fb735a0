"""Benchmark the recorder's dashboard (``edgebird.export.dashboard``): memory and CPU.

What is measured, and why (the dashboard must fit beside the recorder on a Pi Zero 2 W):

(a) The dashboard alone, ``python -m edgebird.export.dashboard --config CFG``, serving a
    station made by the tests' ``make_station`` (the recorder's own ``Database``) plus
    ``--rows`` more detections spread over 90 days (a season), with 3 FLAC clips.
    ``--requests`` sequential requests cycling through the page, page 2, a species page,
    the three spectrograms and the three clips. CPU seconds (user + sys of the process,
    from /proc) over the requests, wall time per request (median, max), and the peak RSS
    (VmHWM) after them.
(b) The cost of one spectrogram made (not cached): the first request of each clip's image.
(c) The baseline the dashboard adds to when it runs in the recorder's process
    (``[dashboard] enabled = yes``): peak RSS of ``python -c "import numpy, soundfile"``,
    both of which the recorder has loaded anyway.
(d) The dashboard as the recorder runs it: a process that imports the recorder's modules,
    then ``start_thread`` and the same requests; its peak RSS before and after (the
    interpreter and model are not loaded: what the thread adds, not the recorder's total).

Measured on this machine (x86), not on a Pi. Results go between the ``bench_dashboard``
markers of docs/BENCHMARKS.md. Run: ``python bench/bench_dashboard.py``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness as h

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from edgebird.export.recorder import Database  # noqa: E402
from test_dashboard import B, _free_port, make_station, write_config  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def season(data: Path, rows: int) -> None:
    db = Database(data / "detections.sqlite")
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=90)
    step = 90 * 86400 / rows
    batch = [((start + dt.timedelta(seconds=i * step)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
              "season", float(i), i + 3.0, B if i % 3 else f"Species {i % 40}_Bird {i % 40}",
              0.5, "Field.tflite", "ab" * 32, None, "synced") for i in range(rows)]
    db.add(batch)
    db.close()


def request(port: int, path: str) -> tuple[int, int, float]:
    t = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, len(body), time.perf_counter() - t


THREAD = """
import sys, pathlib, http.client
import numpy, soundfile, edgebird.export.recorder
from edgebird.export.config import load_config
from edgebird.export.dashboard import start_thread
def hwm():
    return [l for l in pathlib.Path('/proc/self/status').read_text().splitlines()
            if l.startswith('VmHWM')][0].split()[1]
cfg = load_config(sys.argv[1])
before = hwm()
server = start_thread(cfg)
paths = ['/', '/?page=2'] + ['/spectrogram/' + r for r in sys.argv[3:]] + \
    ['/clip/' + r for r in sys.argv[3:]]
for i in range(int(sys.argv[2])):
    c = http.client.HTTPConnection('127.0.0.1', cfg.dashboard.port, timeout=60)
    c.request('GET', paths[i % len(paths)])
    assert c.getresponse().read()
    c.close()
print(before, hwm())
"""


def main() -> None:
    p = h.parser(__doc__)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--requests", type=int, default=100)
    args = p.parse_args()
    info, t0 = h.begin(birdnet=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        station = make_station(root)
        season(station["data"], args.rows)
        port = _free_port()
        cfg = write_config(root, port)
        proc = subprocess.Popen([sys.executable, "-m", "edgebird.export.dashboard",
                                 "--config", str(cfg)], stdout=subprocess.DEVNULL)
        try:
            end = time.time() + 60
            while time.time() < end:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            idle_rss = h.vm_hwm(proc.pid)
            rels = [c[len("clips/"):] for c in station["clips"]]
            request(port, "/")
            page_rss = h.vm_hwm(proc.pid)
            firsts = [request(port, f"/spectrogram/{r}")[2] for r in rels]
            paths = ["/", "/?page=2", f"/?species={B.replace(' ', '+')}"] + \
                [f"/spectrogram/{r}" for r in rels] + [f"/clip/{r}" for r in rels]
            cpu0 = cpu_seconds(proc.pid)
            times, sizes = {}, {}
            t_loop = time.monotonic()
            with h.OtherLoad() as load:
                for i in range(args.requests):
                    path = paths[i % len(paths)]
                    status, size, took = request(port, path)
                    assert status == 200, (path, status)
                    times.setdefault(path.split("/")[1][:5] or "page", []).append(took)
                    sizes[path.split("/")[1][:5] or "page"] = size
            cpu = cpu_seconds(proc.pid) - cpu0
            wall = time.monotonic() - t_loop
            # the dashboard is not a waited-for child: OtherLoad counts it as "other"
            other = max(0.0, load.share - cpu / (wall * h.cores()))
            peak = h.vm_hwm(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        inproc = subprocess.run([sys.executable, "-c", THREAD, str(cfg), str(args.requests),
                                 *rels], capture_output=True, text=True, check=True)
    before, after = (int(x) * 1024 for x in inproc.stdout.split())
    base = subprocess.run([sys.executable, "-c", "import numpy, soundfile, pathlib; "
                           "print([l for l in pathlib.Path('/proc/self/status').read_text()"
                           ".splitlines() if l.startswith('VmHWM')][0].split()[1])"],
                          capture_output=True, text=True, check=True)
    base_rss = int(base.stdout.strip()) * 1024
    mb = 1 / 2**20
    names = {"page": "page (HTML)", "?page": "page 2", "?spec": "species page",
             "spect": "spectrogram (cached)", "clip": "clip (FLAC)"}
    lines = [
        h.generated_by(info, "bench_dashboard.py"),
        "",
        f"Dashboard alone (`python -m edgebird.export.dashboard`), a database of "
        f"{args.rows + 35} detections over 90 days, {args.requests} sequential requests:",
        "",
        f"- CPU: {cpu:.2f} s for {args.requests} requests "
        f"({1000 * cpu / args.requests:.1f} ms a request on average); other processes used "
        f"{100 * other:.0f}% of the CPU meanwhile",
        f"- peak RSS: {peak * mb:.1f} MB after the requests ({idle_rss * mb:.1f} MB idle, "
        f"{page_rss * mb:.1f} MB after the first page, before any spectrogram); "
        f"`import numpy, soundfile` alone peaks at {base_rss * mb:.1f} MB",
        f"- one spectrogram made (not cached): "
        f"{1000 * statistics.median(firsts):.0f} ms median of {len(firsts)}",
        f"- in the recorder's process (a thread): peak RSS {before * mb:.1f} MB with the "
        f"recorder's modules imported, {after * mb:.1f} MB after the same requests "
        f"(+{(after - before) * mb:.1f} MB)",
        "",
        "| request | median ms | max ms | bytes |",
        "|---|---|---|---|",
    ]
    for key, values in times.items():
        lines.append(f"| {names.get(key, key)} | {1000 * statistics.median(values):.1f} | "
                     f"{1000 * max(values):.1f} | {sizes[key]} |")
    lines += ["", "Measured on this x86 machine, not on a Raspberry Pi.",
              *h.caution([other], "the requests", "the times per request are high")]
    h.publish("## Dashboard\n\n" + "\n".join(lines), info, t0, "bench_dashboard",
              write=not args.no_docs)


if __name__ == "__main__":
    main()
