"""tools/bench_remote_write.py: the targets it serves, the job that scrapes them, what it reads."""

from __future__ import annotations

import os
import pathlib
import sys
import urllib.request

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).parents[3] / "tools"))

import bench_remote_write as bench


def samples(page: bytes) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in page.decode().splitlines()
        if line and not line.startswith("#")
    }


@pytest.mark.parametrize("series", [1, 7, 100, 250])
def test_each_target_exposes_the_series_count_asked_for_and_counters_grow(series):
    before = samples(bench.exposition(series, tick=10))
    after = samples(bench.exposition(series, tick=11))

    assert len(before) == series
    assert before.keys() == after.keys()
    counters = [name for name in before if "_total_" in name]
    assert counters
    assert all(after[name] > before[name] for name in counters)


def test_the_server_answers_every_target_on_one_port():
    with bench.target_server(series=5) as port:
        for target in ("t00000", "t04999"):
            url = f"http://127.0.0.1:{port}/metrics?target={target}"
            with urllib.request.urlopen(url, timeout=5) as response:
                assert len(samples(response.read())) == 5


def test_the_job_gives_every_target_its_own_instance_and_the_same_address():
    job = bench.scrape_job(targets=3, port=9999, interval=30)

    assert job["static_configs"] == [{"targets": ["t00000", "t00001", "t00002"]}]
    assert job["scrape_interval"] == "30s"
    assert {"source_labels": ["__address__"], "target_label": "instance"} in job["relabel_configs"]
    assert job["relabel_configs"][-1] == {
        "target_label": "__address__",
        "replacement": "127.0.0.1:9999",
    }


def test_metrics_are_summed_by_name_and_the_process_is_read_from_proc():
    text = 'a_total{url="x"} 2\na_total{url="y"} 3\n# HELP b x\nb 1.5e3\n'

    assert bench.parse_metrics(text) == {"a_total": 5.0, "b": 1500.0}
    assert bench.cpu_seconds(os.getpid()) > 0
    assert set(bench.memory_kib(os.getpid())) == {"VmRSS", "VmHWM"}


def test_only_the_remote_write_arm_differs_and_it_is_the_charms_own():
    pytest.importorskip("lab_monitoring")
    from prometheus import remote_storage

    job = bench.scrape_job(targets=2, port=9999, interval=30)
    url = "http://127.0.0.1:1/api/v1/write"
    without = yaml.safe_load(bench.sender_config(job, 30, None))
    with_ = yaml.safe_load(bench.sender_config(job, 30, url))

    assert "remote_write" not in without
    assert with_.pop("remote_write") == remote_storage.entries(
        (), (url,), credentials=None, replica=bench.REPLICA
    )
    assert with_ == without
