#!/usr/bin/env bash
# One short GPU session, end to end: the CUDA tests, the fast-path accuracy check, the full-size
# benchmarks and a HyperLSTM training run on KanjiVG, everything logged under $OUT.
#
#   OUT=/tmp/gpu bash bench/gpu_session.sh 520          # on a GPU machine, 520 s in all
#   DRY_RUN=1 OUT=/tmp/dry bash bench/gpu_session.sh 200 # the same steps, tiny, on a CPU
#
# The results this produced are in bench/results/*-cuda.json and data/kanjivg_hyper.*.
set -u
TOTAL=${1:-520}
OUT=${OUT:-$PWD/_build/gpu}
mkdir -p "$OUT"
start=$(date +%s)
left() { echo $(( TOTAL - ($(date +%s) - start) )); }
exec > >(tee -a "$OUT/session.log") 2>&1
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then  # packages the GPU image lacks (kanjivg, simplification)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
[ -d .carry/cache ] && export SKETCHLIB_CACHE=$PWD/.carry/cache
PY=${PYTHON:-python3}
if [ -n "${DRY_RUN:-}" ]; then
    DEV=cpu SIZE=small TRAIN_HP="dec_rnn_size=64 enc_rnn_size=32 hyper_num_units=16 batch_size=16"; LIMIT="--limit 200"
else
    DEV=cuda SIZE=full TRAIN_HP="dec_rnn_size=2048"; LIMIT=""
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
fi
$PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"

echo "== 1. CUDA tests ($(left) s left)"
timeout 150 $PY -m pytest -q -p no:cacheprovider --tb=short tests/test_cuda_graph.py tests/test_bptt.py tests/test_encoder.py \
    "tests/test_model.py::test_cuda_paths_equal_the_cpu_reference" 2>&1 | tail -15

echo "== 2. fast path vs plain path ($(left) s left)"
timeout 120 $PY bench/check_fast_paths.py --size $SIZE --device $DEV --n-max 100 --out "$OUT/check_fast_paths-$SIZE-$DEV.json"

echo "== 3. training-step benchmark ($(left) s left)"
timeout 240 $PY bench/train_step.py --size $SIZE --device $DEV --budget 170 --out "$OUT/train_step-$SIZE-$DEV.json"

echo "== 4. sampling benchmark ($(left) s left)"
timeout 60 $PY bench/sampling.py --size $SIZE --device $DEV --out "$OUT/sampling-$SIZE-$DEV.json"

echo "== 5. train the HyperLSTM on KanjiVG ($(left) s left)"
BUDGET=$(( $(left) - 70 ))
RUN=/tmp/run_hyper
rm -rf $RUN /tmp/export
$PY -m sketchlib.train --dataset kanjivg --out $RUN --steps 1000000 --time-budget $BUDGET --dec-model hyper \
    --hp $TRAIN_HP --tf32 --eval-every 500 --log-every 100 --no-progress --no-plot $LIMIT
echo "== 6. export ($(left) s left)"
$PY -m sketchlib.train --export $RUN --name kanjivg_hyper --dest /tmp/export --export-dtype float16
ls -la /tmp/export
cp $RUN/log.jsonl "$OUT/run_log.jsonl" 2>/dev/null
# $OUT takes files of at most 16 MB: the small ones go in one tar, the weights in parts
(cd /tmp/export && tar cf "$OUT/export_small.tar" kanjivg_hyper.manifest.json kanjivg_hyper.log.jsonl)
split -b 15M -d /tmp/export/kanjivg_hyper.safetensors "$OUT/kanjivg_hyper.safetensors.part"
# at most 8 files come back from a lent GPU: the JSON results and the run log go in one tar too
(cd "$OUT" && tar cf results.tar ./*.json run_log.jsonl 2>/dev/null && rm -f ./*.json run_log.jsonl)
ls -la "$OUT"
echo "== done in $(( $(date +%s) - start )) s"
