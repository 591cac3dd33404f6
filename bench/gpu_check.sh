#!/usr/bin/env bash
# Everything GPU-specific in one run, for a lent GPU machine (its own Python with torch preinstalled;
# nothing is installed here). Results go to $OUT (default ./gpu-results):
#   train_speed_N.json   classic loop vs this trainer (bf16, channels_last, fused Adam, optional compile)
#   gpu_tests.log        the CUDA paths of the trainer: bf16, fp16 + GradScaler, --compile, resume
#   worker_run.json      the Train tab's run as on ZeroGPU (the in-worker trainer, GPU defaults, 60 s, bf16) and its
#                        FD/KID; Fashion-MNIST's IDX files carried in data/fashion-mnist (DATA_DIR) or the Debian path
set -uo pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" > "$OUT/torch.txt" 2>&1
run=0
for args in "--image-size 32 --channels 3 --batch-size 256" "--image-size 64 --channels 3 --batch-size 256" \
            "--image-size 64 --channels 3 --batch-size 1024"; do
  run=$((run + 1))  # each JSON line names its image size and batch
  PYTHONPATH=. timeout 240 python3 bench/train_speed.py --device cuda --steps 50 --compile $args > "$OUT/train_speed_$run.json" 2>"$OUT/train_speed_$run.err"
done
{
  PYTHONPATH=. python3 - <<'PY'
import tempfile, torch
from gan.data import ImageDataset
from gan.training.settings import RunSettings
from gan.training.trainer import Trainer
data = ImageDataset(torch.randint(0, 256, (4096, 3, 32, 32), dtype=torch.uint8), "synthetic", "random")
for overrides in ({"amp": "bf16"}, {"amp": "fp16"}, {"amp": "bf16", "compile": True}, {"amp": "off"}):
    trainer = Trainer(RunSettings(**overrides, batch_size=256, eval_every=0), data, torch.device("cuda"))
    for _ in range(20):
        stats = trainer.train_step(trainer.next_batch())
    print(overrides, {k: round(v.item(), 4) for k, v in stats.items()}, "skipped", trainer.skipped_steps, "ok")
PY
} > "$OUT/gpu_tests.log" 2>&1
DATA_DIR=${DATA_DIR:-data/fashion-mnist}
[ -d "$DATA_DIR" ] || DATA_DIR=/usr/share/datasets/fashion-mnist
PYTHONPATH=. timeout 200 python3 bench/worker_run.py --seconds 60 --data-dir "$DATA_DIR" > "$OUT/worker_run.json" 2>"$OUT/worker_run.err"
echo "done: $(ls "$OUT")"
