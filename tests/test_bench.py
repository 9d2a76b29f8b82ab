"""The benchmark scripts run at small sizes (CI smoke test) and write the JSON the book's page reads."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_bench_scripts_run_small_and_record_the_machine(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--size", "small", "--device", "cpu",
                           "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| decoder | units | path | precision | ms_per_step | speedup_vs_plain | target_ms |" in proc.stdout
    train = json.loads((tmp_path / "train_step-small.json").read_text())
    paths = {(r["decoder"], r["path"]) for r in train["rows"]}
    assert {("lstm", "plain"), ("lstm", "fast"), ("lstm", "native"), ("hyper", "fast"), ("layer_norm", "plain")} <= paths
    for r in train["rows"]:
        assert r["ms_per_step"] > 0
    samp = json.loads((tmp_path / "sampling-small.json").read_text())
    assert {r["batch"] for r in samp["rows"]} == {1, 8}
    floored = [r for r in samp["rows"] if "floor_ms" in r]  # the CPU's matmul floor beside each LSTM batch row
    assert {(r["decoder"], r["batch"]) for r in floored} == {("lstm", 8)} and len(floored) == 2
    assert all(r["floor_ms"] > 0 and r["ratio_vs_floor"] == r["min_ms"] / r["floor_ms"] for r in floored)
    assert samp["matmul_floor"][0]["gate_gflops"] > 0.1
    check = json.loads((tmp_path / "check_fast_paths-small.json").read_text())
    assert {r["decoder"] for r in check["rows"]} == {"lstm", "layer_norm", "hyper"}
    assert all(r["within_1e-4"] and 0 <= r["rel_err_y"] < 1e-5 for r in check["rows"]), check["rows"]
    for result in (train, samp, check):
        m = result["machine"]
        assert m["torch"] and m["device"] == "cpu" and m["cpu"] and result["command"].startswith("python bench/")
    assert {r["precision"] for r in train["rows"]} == {"float32"}


def test_kernel_count_counts_fewer_ops_with_one_recurrent_product(tmp_path):
    """bench/kernel_count.py on the CPU: aten ops per HyperLSTM step, forward and backward, for one and two
    recurrent products; the merged product launches fewer in each direction."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "kernel_count.py"), "--out", str(tmp_path / "k.json")],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["merged_recurrent"]: r for r in json.loads((tmp_path / "k.json").read_text())["rows"]}
    assert rows[True]["what"] == "aten ops"
    assert 10 < rows[True]["forward_per_step"] < rows[False]["forward_per_step"]
    assert 10 < rows[True]["backward_per_step"] < rows[False]["backward_per_step"]


def test_cpu_lstm_paths_times_the_three_paths_and_names_the_choice(tmp_path):
    """bench/cpu_lstm_paths.py (the evidence for native.wants_native on the CPU) runs and records its verdict."""
    out = tmp_path / "paths.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "cpu_lstm_paths.py"), "--size", "small", "--repeats", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [r["path"] for r in result["rows"]] == ["plain", "fast loop", "native"]
    assert all(r["wall_min_ms"] > 0 and r["vs_fastest"] >= 1.0 for r in result["rows"])
    assert result["fast_switch_picks"] == "native" and result["machine"]["device"] == "cpu"
