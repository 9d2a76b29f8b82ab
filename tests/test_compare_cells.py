"""tools/compare_cells.py: the offline LSTM / LayerNorm LSTM / HyperLSTM comparison that chapter 5 plots."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import compare_cells  # noqa: E402

from sketchlib.book import assets as book_data
from sketchlib import pretrained  # noqa: E402


def test_a_tiny_comparison_writes_every_cell_with_one_budget_and_exports_the_hyper_run(tmp_path):
    out = tmp_path / "cc.json"
    argv = ["--steps", "2", "--batch-size", "4", "--dec-rnn-size", "8", "--enc-rnn-size", "4", "--z-size", "4",
            "--num-mixture", "2", "--hyper-num-units", "4", "--hyper-embedding-size", "2", "--log-every", "1",
            "--eval-every", "2", "--limit", "100", "--out", str(out), "--runs", str(tmp_path / "runs"),
            "--dest", str(tmp_path / "data")]
    assert compare_cells.main(argv) == 0
    result = json.loads(out.read_text())
    assert set(result["cells"]) == {"lstm", "layer_norm", "hyper"}
    assert result["budget"]["steps"] == 2 and result["budget"]["batch_size"] == 4
    assert "compare_cells.py --steps 2 " in result["command"]
    for key in ("hardware", "torch", "dataset", "seed"):
        assert result[key] is not None
    configs = []
    for cell, run in result["cells"].items():
        assert run["hparams"]["dec_model"] == cell
        assert [r["step"] for r in run["train"]] == [1, 2]
        assert run["valid"][-1]["step"] == 2 and run["wall_time_s"] > 0
        assert run["test"]["n"] > 0
        hp = dict(run["hparams"])
        hp.pop("dec_model")
        configs.append(hp)
    assert configs[0] == configs[1] == configs[2], "the three runs must differ only in the decoder cell"
    # the HyperLSTM run is a loadable, verified pretrained checkpoint
    assert pretrained.list_checkpoints(tmp_path / "data") == ["kanjivg_hyper_small"]
    model, hp, info = pretrained.load_pretrained("kanjivg_hyper_small", data_dir=tmp_path / "data")
    assert hp.dec_model == "hyper" and info["step"] == 2


def test_the_shipped_comparison_is_complete_and_fair():
    try:
        result = book_data.load_json("cell_comparison.json")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert set(result["cells"]) == {"lstm", "layer_norm", "hyper"}
    steps = result["budget"]["steps"]
    for run in result["cells"].values():
        assert run["train"][-1]["step"] == steps and run["valid"][-1]["step"] == steps
    hps = [{k: v for k, v in run["hparams"].items() if k != "dec_model"} for run in result["cells"].values()]
    assert hps[0] == hps[1] == hps[2]
    assert "kanjivg_hyper_small" in pretrained.list_checkpoints()
