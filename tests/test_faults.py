"""Faults: kill -9 at several points (in an update, during a save, during a log append) then resume, bit-exact;
Ctrl-C / SIGTERM save and say how to resume; one trainer per run folder; stale temporary files removed."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import sketchlib.train as T
from sketchlib.train import checkpoint
from sketchlib.train.guard import RunLock

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
HP_ARGS = ["--hp", "enc_rnn_size=8", "dec_rnn_size=16", "z_size=4", "num_mixture=3", "batch_size=4"]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    from sketchlib.data.npz import save_npz

    rng = np.random.default_rng(0)

    def sketch():
        m = int(rng.integers(4, 15))
        s = np.zeros((m, 3), np.int16)
        s[:, :2] = rng.integers(-20, 20, size=(m, 2))
        s[-1, 2] = 1
        return s

    path = tmp_path_factory.mktemp("faults") / "tiny.npz"
    save_npz(path, {"train": [sketch() for _ in range(24)], "valid": [sketch() for _ in range(6)],
                    "test": [sketch() for _ in range(6)]})
    return path


def args(npz, out, steps, *more):
    return ["--dataset", str(npz), "--out", str(out), "--steps", str(steps), "--no-progress", "--no-plot",
            "--threads", "1", "--eval-every", "3", "--save-every", "2", "--log-every", "1", *HP_ARGS, *more]


#: Runs the CLI in a child process that kills itself with SIGKILL at a chosen point.
JOB = textwrap.dedent('''
    import os, signal, sys
    from sketchlib.train import checkpoint, loop, run, cli
    point, at = sys.argv[1], int(sys.argv[2])
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if point == "update":  # inside update `at`, before its weights change
        lr = loop.learning_rate
        loop.learning_rate = lambda t, hp: die() if t == at else lr(t, hp)
    elif point == "save":  # half of the `at`-th checkpoint file written to its temporary file
        from sketchlib.data.fileio import atomic_path
        write, n = checkpoint.atomic_write, [0]
        def dying_write(path, data):
            n[0] += path.name == "last.safetensors"
            if n[0] == at and path.name == "last.safetensors":
                with atomic_path(path) as tmp:
                    tmp.write_bytes(data[: len(data) // 2])
                    die()
            return write(path, data)
        checkpoint.atomic_write = dying_write
    elif point == "log":  # half a log line appended for step `at`
        log = run.Run.log
        def dying_log(self, record):
            if record.get("step") == at and record.get("split") == "train":
                with open(self.log_path, "a") as f:
                    f.write('{"split": "train", "ste')
                die()
            log(self, record)
        run.Run.log = dying_log
    sys.exit(cli.main(sys.argv[3:]))
''')


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _state(path):
    weights, _, info = checkpoint.read(path)
    opt = info["optimizer_state"]["state"]
    return weights, {(i, k): v for i, st in opt.items() for k, v in st.items()}, info["step"]


def test_kill_9_anywhere_then_resume_is_bit_exact_and_leaves_no_temp_file(tmp_path, npz, capsys):
    steps = 6
    assert T.main(args(npz, tmp_path / "whole", steps)) == 0
    ref_w, ref_opt, _ = _state(tmp_path / "whole" / "last.safetensors")
    ref_log = [(r["split"], r["step"], r.get("loss")) for r in T.read_log(tmp_path / "whole" / "log.jsonl")]
    job = tmp_path / "job.py"
    job.write_text(JOB)
    for point, at in (("update", 3), ("save", 2), ("log", 5)):
        out = tmp_path / point
        proc = subprocess.run([sys.executable, str(job), point, str(at), *args(npz, out, steps)], env=_env(),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-2000:])
        if point == "save":  # the kill left a half-written temporary checkpoint
            assert list(out.glob(".last.safetensors.*.tmp.safetensors"))
        with pytest.warns(UserWarning, match="truncated") if point == "log" else _no_warning():
            assert T.main(args(npz, out, steps, "--resume")) == 0
        w, opt, step = _state(out / "last.safetensors")
        assert step == steps
        assert all(torch.equal(w[k], ref_w[k]) for k in ref_w), point
        assert all(torch.equal(opt[k], ref_opt[k]) for k in ref_opt), point
        log = [(r["split"], r["step"], r.get("loss")) for r in T.read_log(out / "log.jsonl")]
        assert log == ref_log, point
        assert not [p.name for p in out.iterdir() if ".tmp" in p.name], point


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_item15_a_signal_saves_a_checkpoint_and_says_how_to_resume(tmp_path, npz, sig, status):
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "sketchlib.train", *args(npz, out, 100000)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not (out / "log.jsonl").is_file() or len((out / "log.jsonl").read_text().splitlines()) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
            time.sleep(0.05)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    line = stdout.strip().splitlines()[-1]
    step = checkpoint.read(out / "last.safetensors")[2]["step"]
    assert line.startswith(f"stopped by {signal.Signals(sig).name} at step {step}: checkpoint {out / 'last.safetensors'}")
    assert line.endswith("--resume") and "resume with: python -m sketchlib.train --dataset" in line
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]


def test_item6_a_second_trainer_on_the_same_folder_stops_with_a_clear_message(tmp_path, npz, capsys):
    out = tmp_path / "r"
    with RunLock(out):  # another trainer holds the folder (a second open file: the lock conflicts as across processes)
        assert T.main(args(npz, out, 2)) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {out} is in use by another trainer (pid {os.getpid()})") and "\n" not in err
        assert not (out / "log.jsonl").exists()
    (out / ".lock").write_text("999999999\n")  # the lock file of a trainer that died: no lock is held
    assert T.main(args(npz, out, 2)) == 0


def test_item11_stale_temporary_files_of_the_run_are_removed_at_start(tmp_path, npz):
    out = tmp_path / "r"
    assert T.main(args(npz, out, 2)) == 0
    stale = [out / ".last.safetensors.k2j3h4.tmp.safetensors", out / ".best.safetensors.zz.tmp.safetensors",
             out / ".log.jsonl.a1.tmp.jsonl", out / ".loss_curve.png.q.tmp.png"]
    mine = [out / ".notes.txt.x.tmp.txt", out / "last.safetensors.bak"]  # not names this library writes
    for p in stale + mine:
        p.write_bytes(b"\0" * 1000)
    assert T.main(args(npz, out, 4, "--resume")) == 0
    assert not any(p.exists() for p in stale) and all(p.exists() for p in mine)
