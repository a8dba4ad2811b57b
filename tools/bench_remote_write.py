"""What remote write costs the sender: CPU and memory of a real Prometheus, with and without it.

    python tools/bench_remote_write.py [--targets N] [--series N] [--interval S]
        [--rounds N] [--warmup S] [--measure S] [--json PATH]
    (or: tox -e bench -- --remote-write [same options])

Each round starts, on loopback ports with temporary TSDBs, three real Prometheus processes
(Debian's /usr/bin/prometheus): two senders with the same prometheus.yml, rendered by the
charm's own code (prometheus.config_file.render_config), one of them with the `remote_write`
section the charm renders for a related store (prometheus.remote_storage.entries: queue
settings, replica label), and a receiver (--web.enable-remote-write-receiver) it writes into.
Both senders scrape the same --targets targets, served by one threaded HTTP server in this
process (the blackbox-exporter pattern: every target is `?target=tNNNNN` on one port, its
`instance` label its own), each exposing --series series whose values change every second.

The two arms run side by side, so the noise of a shared machine falls on both alike; each round
has fresh processes and alternates which sender starts first. After --warmup seconds (the
first scrapes create the series), each sender process alone is measured over --measure
seconds: CPU from /proc/<pid>/stat (utime + stime), memory from /proc/<pid>/status (VmRSS
sampled every 10 s, median and last; VmHWM). The receiver's cost is not counted.

So that the figure is about a working remote write: `up` samples are counted over a window in
the sender and in the receiver (at the same end time, once the sender's queue has sent past
it), the samples each appended over the measurement are compared, and the sender's
prometheus_remote_storage_samples_{total,failed_total,retried_total,pending} are printed.

Prints figures and asserts none.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROMETHEUS_SRC = ROOT / "charms" / "prometheus" / "src"
TOOLS = pathlib.Path(__file__).resolve().parent
for _path in (str(PROMETHEUS_SRC), str(TOOLS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import loopback  # noqa: E402

# A small exporter's families: (name, type, label values); 10 x 10 = 100 series by default.
FAMILIES = 10
JOB = "bench"
REPLICA = "bench/prometheus/0"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HIGHEST_SENT = "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"


# --- the targets ------------------------------------------------------------------------------


def exposition(series: int, tick: int) -> bytes:
    """A /metrics page of `series` series (counters and gauges) whose values move with `tick`."""
    lines = []
    per_family = max(1, -(-series // FAMILIES))
    written = 0
    family = 0
    while written < series:
        counter = family % 2 == 0
        name = f"bench_{'requests_total' if counter else 'queue_depth'}_{family}"
        lines.append(f"# HELP {name} A series of a small exporter.")
        lines.append(f"# TYPE {name} {'counter' if counter else 'gauge'}")
        for n in range(min(per_family, series - written)):
            value = tick * (n + 1) if counter else (tick * 7 + n) % 100
            lines.append(f'{name}{{item="{n}"}} {value}')
            written += 1
        family += 1
    return ("\n".join(lines) + "\n").encode()


@contextlib.contextmanager
def target_server(series: int) -> Iterator[int]:
    """Serve every target's /metrics?target=... on one loopback port; yield the port.

    The page changes once a second (counters grow), the same for every target: a target's
    series differ by their `instance` label, as the same exporter's do on many machines.
    """
    cache: dict[int, bytes] = {}
    lock = threading.Lock()

    def page() -> bytes:
        tick = int(time.time())
        with lock:
            if tick not in cache:
                cache.clear()
                cache[tick] = exposition(series, tick)
            return cache[tick]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.startswith("/metrics?"):
                self.send_error(404)
                return
            body = page()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # A Prometheus stopping mid-scrape hangs up: nothing to report.
            with contextlib.suppress(ConnectionError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 1024
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def scrape_job(targets: int, port: int, interval: int) -> dict[str, Any]:
    """One job scraping `targets` targets, all served at 127.0.0.1:`port`, each `?target=`."""
    return {
        "job_name": JOB,
        "scrape_interval": f"{interval}s",
        "scrape_timeout": f"{min(interval, 10)}s",
        "metrics_path": "/metrics",
        "static_configs": [{"targets": [f"t{n:05d}" for n in range(targets)]}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__address__"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": f"127.0.0.1:{port}"},
        ],
    }


def sender_config(job: Mapping[str, Any], interval: int, write_url: str | None) -> str:
    """prometheus.yml as the charm renders it; with the charm's remote_write to `write_url`."""
    from prometheus import config_file, remote_storage

    remote = (
        remote_storage.entries((), (write_url,), credentials=None, replica=REPLICA)
        if write_url
        else []
    )
    return config_file.render_config(
        scrape_interval=f"{interval}s",
        scrape_timeout=f"{min(interval, 10)}s",
        evaluation_interval=f"{interval}s",
        external_labels={},
        scrape_configs=[job],
        remote_write=remote,
    )


# --- the processes ----------------------------------------------------------------------------


def parse_metrics(text: str) -> dict[str, float]:
    """Sum a /metrics page's samples by metric name (labels dropped)."""
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            sums[name] = sums.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return sums


def cpu_seconds(pid: int) -> float:
    """CPU time of process `pid` (user + system), in seconds."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    # After the command name: state is field 3; utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of process `pid`, in KiB."""
    found = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


class Prometheus:
    """A Prometheus process on a loopback port with its own TSDB; stopped by `stop`."""

    def __init__(self, name: str, tmp: pathlib.Path, config: str, receiver: bool = False):
        self.port = loopback.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        directory = tmp / name
        directory.mkdir()
        (directory / "prometheus.yml").write_text(config)
        args = [
            "prometheus",
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        if receiver:
            args.append("--web.enable-remote-write-receiver")
        self.log = (directory / "prometheus.log").open("ab")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until /-/ready answers 200; raise if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = f"{self.base}/-/ready"
            with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: see {self.log.name}")
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready after {timeout}s: see {self.log.name}")

    def metrics(self) -> dict[str, float]:
        """This process's own /metrics, summed by name."""
        self.check_alive()
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=10) as response:  # noqa: S310
            return parse_metrics(response.read().decode())

    def query(self, promql: str, at: float | None = None) -> float:
        """The first value of an instant query's result (0 if empty)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.base}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
            result = json.loads(response.read())["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    def check_alive(self) -> None:
        """Raise, with the end of its log, if the process has exited."""
        if self.process.poll() is not None:
            self.log.flush()
            tail = pathlib.Path(self.log.name).read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(
                f"prometheus exited ({self.process.returncode}):\n" + "\n".join(tail)
            )

    def stop(self) -> None:
        """Stop the process as systemd does (SIGTERM), then SIGKILL after 30 s."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# --- a round ----------------------------------------------------------------------------------


def one_round(
    number: int, options: argparse.Namespace, port: int, tmp: pathlib.Path
) -> dict[str, Any]:
    """Run both arms side by side once; return each sender's figures and the delivery check."""
    job = scrape_job(options.targets, port, options.interval)
    running: list[Prometheus] = []
    try:
        receiver = Prometheus("receiver", tmp, "global: {}\n", receiver=True)
        running.append(receiver)
        receiver.wait_ready()
        write_url = f"{receiver.base}/api/v1/write"
        arms = {
            "without": sender_config(job, options.interval, None),
            "with": sender_config(job, options.interval, write_url),
        }
        order = ["with", "without"] if number % 2 else ["without", "with"]
        senders: dict[str, Prometheus] = {}
        for arm in order:
            senders[arm] = Prometheus(f"sender-{arm}", tmp, arms[arm])
            running.append(senders[arm])
        for sender in senders.values():
            sender.wait_ready()

        time.sleep(options.warmup)
        start = time.time()
        cpu0 = {arm: cpu_seconds(s.process.pid) for arm, s in senders.items()}
        appended0 = {arm: s.metrics() for arm, s in senders.items()}
        received0 = receiver.metrics()["prometheus_tsdb_head_samples_appended_total"]
        rss: dict[str, list[int]] = {arm: [] for arm in senders}
        while time.time() - start < options.measure:
            time.sleep(min(10, max(0.0, options.measure - (time.time() - start))))
            for arm, s in senders.items():
                rss[arm].append(memory_kib(s.process.pid)["VmRSS"])
        elapsed = time.time() - start
        cpu1 = {arm: cpu_seconds(s.process.pid) for arm, s in senders.items()}
        memory = {arm: memory_kib(s.process.pid) for arm, s in senders.items()}
        after = {arm: s.metrics() for arm, s in senders.items()}
        received1 = receiver.metrics()["prometheus_tsdb_head_samples_appended_total"]

        # Delivery: `up` samples over a window ending before the sender's newest sent sample.
        sender = senders["with"]
        end = time.time() - options.interval - 5
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            # The senders do not scrape themselves: their own /metrics, not a query.
            if sender.metrics().get(HIGHEST_SENT, 0) >= end:
                break
            time.sleep(1)
        sent_past_end = sender.metrics().get(HIGHEST_SENT, 0) >= end
        window = min(int(options.measure), 120)
        count = f'sum(count_over_time(up{{job="{JOB}"}}[{window}s]))'
        up_sent = sender.query(count, at=end)
        up_arrived = receiver.query(count, at=end)
        targets_up = {arm: s.query(f'sum(up{{job="{JOB}"}})') for arm, s in senders.items()}
        series = {arm: after[arm]["prometheus_tsdb_head_series"] for arm in senders}
        remote = after["with"]
    finally:
        for process in reversed(running):
            process.stop()

    def appended(arm: str) -> float:
        key = "prometheus_tsdb_head_samples_appended_total"
        return after[arm][key] - appended0[arm][key]

    result: dict[str, Any] = {"round": number + 1, "seconds": round(elapsed, 1)}
    for arm in ("without", "with"):
        result[arm] = {
            "cpu_s_per_min": round((cpu1[arm] - cpu0[arm]) * 60 / elapsed, 2),
            "rss_mib_median": round(statistics.median(rss[arm]) / 1024),
            "rss_mib_last": round(memory[arm]["VmRSS"] / 1024),
            "hwm_mib": round(memory[arm]["VmHWM"] / 1024),
            "head_series": int(series[arm]),
            "targets_up": int(targets_up[arm]),
            "samples_appended": int(appended(arm)),
        }
    result["delivery"] = {
        "window_s": window,
        "sent_past_end": sent_past_end,
        "up_samples_sent": int(up_sent),
        "up_samples_arrived": int(up_arrived),
        "appended_by_sender": int(appended("with")),
        "appended_by_receiver": int(received1 - received0),
        "samples_sent_total": int(remote.get("prometheus_remote_storage_samples_total", 0)),
        "samples_failed_total": int(
            remote.get("prometheus_remote_storage_samples_failed_total", 0)
        ),
        "samples_retried_total": int(
            remote.get("prometheus_remote_storage_samples_retried_total", 0)
        ),
        "samples_pending": int(remote.get("prometheus_remote_storage_samples_pending", 0)),
        "shards": int(remote.get("prometheus_remote_storage_shards", 0)),
    }
    return result


def summary(rounds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds, and the median of the rounds' ratios (with / without)."""

    def median(arm: str, key: str) -> float:
        return statistics.median(r[arm][key] for r in rounds)

    def ratio(key: str) -> float:
        return statistics.median(r["with"][key] / r["without"][key] for r in rounds)

    return {
        arm: {key: median(arm, key) for key in ("cpu_s_per_min", "rss_mib_median", "hwm_mib")}
        for arm in ("without", "with")
    } | {
        "ratio": {
            key: round(ratio(key), 3) for key in ("cpu_s_per_min", "rss_mib_median", "hwm_mib")
        }
    }


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the options, run the rounds, print the figures; return them."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--targets", type=int, default=5000, help="scrape targets (5000)")
    parser.add_argument("--series", type=int, default=100, help="series per target (100)")
    parser.add_argument("--interval", type=int, default=30, help="scrape interval, s (30)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, fresh processes each (3)")
    parser.add_argument("--warmup", type=float, default=75, help="s before measuring (75)")
    parser.add_argument("--measure", type=float, default=150, help="s measured per round (150)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    options = parser.parse_args(argv)

    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    version = subprocess.run(
        ["prometheus", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[:1]
    print(
        f"Remote write, sender's cost: {' '.join(version)}; {os.cpu_count()} CPUs, load average"
        f" {load} at the start (a shared machine: prefer the ratios)\n"
        f"{options.targets} targets x {options.series} series ="
        f" {options.targets * options.series:,} series, scraped every {options.interval} s;"
        f" {options.rounds} rounds of {options.warmup:.0f} s warm-up + {options.measure:.0f} s"
        " measured, both arms side by side"
    )
    rounds = []
    with target_server(options.series) as port, tempfile.TemporaryDirectory() as tmp:
        for number in range(options.rounds):
            directory = pathlib.Path(tmp, f"round-{number}")
            directory.mkdir()
            result = one_round(number, options, port, directory)
            rounds.append(result)
            print_round(result)
    figures = {
        "setup": vars(options) | {"json": None},
        "rounds": rounds,
        "summary": summary(rounds),
    }
    total = summary(rounds)
    series = options.targets * options.series
    extra_cpu = total["with"]["cpu_s_per_min"] - total["without"]["cpu_s_per_min"]
    extra_rss = total["with"]["rss_mib_median"] - total["without"]["rss_mib_median"]
    print(
        f"\nmedians: without {total['without']['cpu_s_per_min']} CPU s/min,"
        f" {total['without']['rss_mib_median']} MiB RSS; with"
        f" {total['with']['cpu_s_per_min']} CPU s/min, {total['with']['rss_mib_median']} MiB RSS;"
        f" ratio (median of the rounds') CPU x{total['ratio']['cpu_s_per_min']},"
        f" RSS x{total['ratio']['rss_mib_median']}, peak x{total['ratio']['hwm_mib']}\n"
        f"remote write adds {extra_cpu:.2f} CPU s/min and {extra_rss:.0f} MiB RSS: per 100k"
        f" series at {options.interval} s, {extra_cpu / series * 1e5:.3f} CPU s/min and"
        f" {extra_rss / series * 1e5:.1f} MiB; per million samples sent,"
        f" {extra_cpu / (series * 60 / options.interval) * 1e6:.2f} CPU s"
    )
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {options.json}")
    return figures


def print_round(r: Mapping[str, Any]) -> None:
    """Print one round's figures: each arm, then the delivery check."""
    d = r["delivery"]
    for arm in ("without", "with"):
        a = r[arm]
        print(
            f"round {r['round']} {arm:>7}: {a['cpu_s_per_min']:6.2f} CPU s/min, RSS median"
            f" {a['rss_mib_median']} MiB (last {a['rss_mib_last']}, peak {a['hwm_mib']}),"
            f" {a['head_series']:,} head series, {a['targets_up']} targets up,"
            f" {a['samples_appended']:,} samples appended in {r['seconds']} s"
        )
    print(
        f"round {r['round']} delivery: up samples over {d['window_s']} s"
        f"{'' if d['sent_past_end'] else ' (the queue had NOT sent that far)'}:"
        f" {d['up_samples_sent']:,}"
        f" in the sender, {d['up_samples_arrived']:,} arrived; appended over the measurement:"
        f" sender {d['appended_by_sender']:,}, receiver {d['appended_by_receiver']:,}; sent"
        f" {d['samples_sent_total']:,}, failed {d['samples_failed_total']}, retried"
        f" {d['samples_retried_total']}, pending {d['samples_pending']}, shards {d['shards']}"
    )


if __name__ == "__main__":
    run()
