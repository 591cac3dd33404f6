"""Training: run folder contents, exact resume, AMP on CPU, the non-finite guard, signals, bad flags."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import ROOT, TINY_MODEL_SETTINGS, tiny_mnist_args, train
from safetensors.torch import load_file

from gan.checkpoint import list_training_states, load_model, load_training_state
from gan.data import load_dataset
from gan.training.settings import RunSettings
from gan.training.trainer import Trainer


def test_run_folder_has_everything(tiny_run):
    assert [p.name for p in list_training_states(tiny_run / "checkpoints")] == ["step_0000003.pt", "step_0000006.pt"]
    assert sorted(p.name for p in (tiny_run / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    keys = ("loss_d", "loss_g", "d_real", "d_fake", "lr_g", "lr_d", "images_per_second")
    for key in (*keys, "weight_norms_g", "weight_norms_d"):
        assert key in records[-1]
    assert 0 < records[-1]["d_real"] < 1 and records[-1]["weight_norms_g"]
    for name in ("loss.png", "weights.png"):
        assert (tiny_run / name).stat().st_size > 1000
    export = tiny_run / "model"
    for name in (
        "config.json",
        "model.safetensors",
        "discriminator.safetensors",
        "samples.png",
        "loss.png",
        "metrics.jsonl",
    ):
        assert (export / name).is_file(), name
    config = json.loads((export / "config.json").read_text())
    assert config["format_version"] == 1 and config["training"]["steps"] == 6 and config["nc"] == 1


def _final_generator(out) -> dict[str, torch.Tensor]:
    return load_file(out / "model" / "model.safetensors")


@pytest.mark.parametrize("amp", ["auto", "off"])
def test_resume_is_bitwise_exact(tmp_path, idx_dir, amp, monkeypatch):
    """A run stopped by SIGTERM after step 4 and resumed ends bitwise where the uninterrupted run does
    (learning-rate decay included: it runs over the last half here)."""

    def common(out, *extra: str) -> list[str]:
        every = ["--log-every", "1", "--sample-every", "100", "--checkpoint-every", "100"]
        return tiny_mnist_args(idx_dir, out, "--amp", amp, *every, "--steps", "8", "--lr-decay", "0.5", *extra)

    assert train(common(tmp_path / "straight")) == 0
    train_step = Trainer.train_step

    def stop_after_step_4(trainer, real):
        stats = train_step(trainer, real)
        if trainer.step == 3:  # counted after this call returns
            os.kill(os.getpid(), signal.SIGTERM)
        return stats

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", stop_after_step_4)
        assert train(common(tmp_path / "split")) == 128 + signal.SIGTERM
    assert load_training_state(list_training_states(tmp_path / "split" / "checkpoints")[-1])["step"] == 4
    # the last of 8 steps ran at 1/4 of the learning rate: (1 - 7/8) / 0.5
    last = load_training_state(list_training_states(tmp_path / "straight" / "checkpoints")[-1])
    assert last["opt_g"]["param_groups"][0]["lr"] == pytest.approx(last["args"]["lr_g"] / 4)
    assert train(common(tmp_path / "split", "--resume", "auto")) == 0
    straight, split = _final_generator(tmp_path / "straight"), _final_generator(tmp_path / "split")
    assert straight.keys() == split.keys()
    for key in straight:
        assert torch.equal(straight[key], split[key]), key
    # the resumed run's metrics continue where the first half stopped
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))


def test_resume_refuses_a_different_architecture(tmp_path, idx_dir, capsys):
    assert train(tiny_mnist_args(idx_dir, tmp_path, "--steps", "2")) == 0
    assert train(tiny_mnist_args(idx_dir, tmp_path, "--steps", "4", "--resume", "auto", "--ngf", "8")) == 2
    assert "--ngf 8 differs from the resumed run's 4" in capsys.readouterr().err


def test_resuming_a_decayed_run_with_a_longer_budget_warns_of_the_jump(tmp_path, idx_dir, capsys):
    """The learning rates decay to 0 at a run's end; a longer budget on resume raises them at once, which knocked a
    real run's discriminator out: the resume says so, with the rates before and after."""
    assert train(tiny_mnist_args(idx_dir, tmp_path, "--steps", "6")) == 0
    capsys.readouterr()
    assert train(tiny_mnist_args(idx_dir, tmp_path, "--steps", "6", "--resume", "auto")) == 0
    assert "re-planned" not in capsys.readouterr().out
    assert train(tiny_mnist_args(idx_dir, tmp_path, "--steps", "12", "--resume", "auto")) == 0
    output = capsys.readouterr()
    assert "the run was planned for 6 steps, now 12 steps: the learning-rate decay is re-planned" in output.out
    assert "the learning rates jump from 0% to 100% of --lr-g/--lr-d at once" in output.err


def _trainer(idx_dir, **settings) -> Trainer:
    settings = RunSettings(dataset="mnist", **TINY_MODEL_SETTINGS, **settings)
    return Trainer(settings, load_dataset("mnist", idx_dir, download=False), torch.device("cpu"))


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_on_cpu_trains(idx_dir, amp):
    trainer = _trainer(idx_dir, amp=amp)
    assert (trainer.scaler is not None) == (amp == "fp16")
    before = [p.clone() for p in trainer.generator.parameters()]
    for _ in range(3):
        stats = trainer.train_step(trainer.next_batch())
    assert all(torch.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.generator.parameters(), strict=True))
    if amp == "fp16":
        assert trainer.scaler.is_enabled() and trainer.scaler.get_scale() > 0


@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_non_finite_step_is_skipped_and_counted(idx_dir, amp):
    trainer = _trainer(idx_dir, amp=amp)
    for _ in range(3):  # lets fp16's loss scale settle: its first steps overflow (and are skipped) by design
        trainer.train_step(trainer.next_batch())
    skipped = trainer.skipped_steps
    real = trainer.next_batch()
    real[0, 0, 0, 0] = float("nan")  # poisons the discriminator's loss, not the generator's
    d_before = {k: v.clone() for k, v in trainer.discriminator.named_parameters()}
    g_before = [p.clone() for p in trainer.generator.parameters()]
    stats = trainer.train_step(real)
    assert not torch.isfinite(stats["loss_d"])
    assert trainer.skipped_steps == skipped + 1
    for key, value in trainer.discriminator.named_parameters():
        assert torch.equal(value, d_before[key]), key
    assert all(torch.isfinite(b).all() for b in trainer.discriminator.buffers())  # BatchNorm statistics restored
    assert any(not torch.equal(a, b) for a, b in zip(g_before, trainer.generator.parameters(), strict=True))
    trainer.train_step(trainer.next_batch())
    assert trainer.skipped_steps == skipped + 1


@pytest.mark.slow
def test_sigterm_saves_a_resumable_state(tmp_path, idx_dir):
    out = tmp_path / "run"
    command = [sys.executable, str(ROOT / "train.py"), *tiny_mnist_args(idx_dir, out, "--steps", "100000")]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.time() + 60
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, output
    assert "resume with" in output and "Traceback" not in output
    states = list_training_states(out / "checkpoints")
    assert states
    step = load_training_state(states[-1])["step"]
    assert 50 <= step < 100000
    assert load_model(out / "model").metadata["training"]["steps"] == step
    assert (
        train(
            [
                "--out",
                str(out),
                "--resume",
                "auto",
                "--steps",
                str(step + 2),
                "--dataset",
                "mnist",
                "--data-dir",
                str(idx_dir),
                "--no-download",
            ]
        )
        == 0
    )
    assert load_model(out / "model").metadata["training"]["steps"] == step + 2


@pytest.mark.slow
def test_missing_data_is_one_clear_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path),
            "--no-download",
            "--out",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: no mnist files in") and "train-images-idx3-ubyte" in lines[0]


def test_bad_flags_are_refused(tmp_path, capsys):
    assert train(["--batch-size", "0", "--out", str(tmp_path)]) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    assert train(["--lr-decay", "1.5", "--out", str(tmp_path)]) == 2
    assert "--lr-decay 1.5 is not a fraction of the run" in capsys.readouterr().err
    assert train(["--ngf", "5000", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --nz/--ngf/--ndf do not make a model this project trains: ngf must "
        "be a whole number from 1 to 4096, got 5000"
    )
    with pytest.raises(SystemExit):
        train(["--amp", "fp8"])
