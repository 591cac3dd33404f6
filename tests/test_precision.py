"""Training precision per machine: the decision (with injected CPU flags and probe results), the real probe on this
machine, its cache, and the resume rule."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_mnist_args, train
from safetensors.torch import load_file

from gan import precision
from gan.checkpoint import list_training_states, load_model, load_training_state, save_training_state
from gan.models import Discriminator, Generator, ModelConfig
from gan.precision import Cpu, bf16_slowdown, cached_bf16_slowdown, choose_precision

WITHOUT_BF16 = Cpu("AMD EPYC 7B13", frozenset({"sse4_2", "avx", "avx2", "fma"}))
WITH_BF16 = Cpu("Intel Xeon Platinum 8481C", frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}))
CPU = torch.device("cpu")


def _networks() -> tuple[Generator, Discriminator]:
    config = ModelConfig(nz=8, ngf=4, ndf=4, nc=1)
    return Generator(config), Discriminator(config)


def _refuse_probe(*_):
    raise AssertionError("the probe must not run here")


def test_cpu_without_native_bf16_trains_in_fp32_without_probing(monkeypatch):
    monkeypatch.setattr(precision, "this_cpu", lambda: WITHOUT_BF16)
    chosen = choose_precision("auto", CPU, *_networks(), 8, probe=_refuse_probe)
    assert chosen.dtype is None and chosen.amp == "off" and chosen.warning is None
    assert chosen.reason == "fp32: this CPU has no native bf16 (AMD EPYC 7B13 (AVX2))"
    # asked for explicitly, bf16 runs, with one warning
    forced = choose_precision("bf16", CPU, *_networks(), 8, probe=_refuse_probe)
    assert forced.dtype == torch.bfloat16 and forced.amp == "bf16"
    assert "without native bf16" in forced.warning and "--amp off" in forced.warning
    assert choose_precision("off", CPU, *_networks(), 8, probe=_refuse_probe).dtype is None


@pytest.mark.parametrize(
    ("ratio", "dtype", "reason"),
    [
        (0.5, torch.bfloat16, "bf16 autocast: measured 2.0x faster than fp32 on this CPU"),
        (0.95, None, "fp32: bf16 measured only 1.05x faster on this CPU"),
        (1.3, None, "fp32: bf16 measured 1.3x slower on this CPU"),
        (27.0, None, "fp32: bf16 measured 27.0x slower on this CPU"),
    ],
)
def test_cpu_with_native_bf16_follows_the_probe(monkeypatch, ratio, dtype, reason):
    monkeypatch.setattr(precision, "this_cpu", lambda: WITH_BF16)
    calls = []
    chosen = choose_precision("auto", CPU, *_networks(), 8, probe=lambda g, d, b: calls.append(b) or ratio)
    assert calls == [8]
    assert chosen.dtype == dtype and chosen.reason.startswith(reason) and "AVX512-BF16" in chosen.reason
    assert chosen.warning is None


def test_the_real_probe_leaves_networks_and_rng_untouched():
    generator, discriminator = _networks()
    weights = [t.clone() for t in (*generator.state_dict().values(), *discriminator.state_dict().values())]
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    ratio = bf16_slowdown(generator, discriminator, 8)
    assert 0 < ratio < float("inf")
    assert torch.equal(torch.get_rng_state(), rng)
    after = [*generator.state_dict().values(), *discriminator.state_dict().values()]
    assert all(torch.equal(a, b) for a, b in zip(weights, after, strict=True))
    assert all(p.grad is None for p in (*generator.parameters(), *discriminator.parameters()))


def test_the_verdict_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path))
    measured = []
    monkeypatch.setattr(precision, "bf16_slowdown", lambda g, d, b: measured.append(b) or 0.7)
    generator, discriminator = _networks()
    assert cached_bf16_slowdown(generator, discriminator, 8) == 0.7
    assert cached_bf16_slowdown(generator, discriminator, 8) == 0.7
    assert measured == [8]
    assert cached_bf16_slowdown(generator, discriminator, 16) == 0.7  # another batch size is another key
    assert measured == [8, 16]
    saved = json.loads(precision.probe_cache_path().read_text())
    assert len(saved) == 2 and {v["bf16_over_fp32"] for v in saved.values()} == {0.7}
    precision.probe_cache_path().write_text("{not json")  # a broken cache is measured again, not fatal
    assert cached_bf16_slowdown(generator, discriminator, 8) == 0.7 and measured == [8, 16, 8]


def _common(idx_dir, out, *extra) -> list[str]:
    every = ["--log-every", "2", "--checkpoint-every", "2", "--sample-every", "100", "--eval-every", "0"]
    return tiny_mnist_args(idx_dir, out, "--steps", "4", *every, *extra)


def test_a_run_ends_with_the_same_weights_whether_or_not_the_verdict_was_cached(tmp_path, idx_dir, monkeypatch, capsys):
    """On a CPU with native bf16 the first run probes (the real probe), the second reads the cached verdict: both
    end bitwise equal, and equal to a run given that precision explicitly."""
    monkeypatch.setattr(precision, "this_cpu", lambda: WITH_BF16)
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "cache"))
    assert train(_common(idx_dir, tmp_path / "probed")) == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    assert "measured" in first_line and "on this CPU (Intel Xeon Platinum 8481C" in first_line
    assert precision.probe_cache_path().is_file()
    assert train(_common(idx_dir, tmp_path / "cached")) == 0
    verdict = load_model(tmp_path / "probed" / "model").metadata["training"]["precision"]
    assert load_model(tmp_path / "cached" / "model").metadata["training"]["precision"] == verdict
    amp = {"fp32": "off", "bf16": "bf16"}[verdict]
    assert train(_common(idx_dir, tmp_path / "explicit", "--amp", amp)) == 0
    weights = [load_file(tmp_path / run / "model" / "model.safetensors") for run in ("probed", "cached", "explicit")]
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]) and torch.equal(weights[0][key], weights[2][key]), key


def test_checkpoints_record_the_chosen_precision_and_resume_keeps_it(tmp_path, idx_dir, monkeypatch, capsys):
    monkeypatch.setattr(precision, "this_cpu", lambda: WITHOUT_BF16)
    out = tmp_path / "run"
    assert train(_common(idx_dir, out)) == 0  # --amp auto
    states = list_training_states(out / "checkpoints")
    assert {load_training_state(p)["args"]["amp"] for p in states} == {"off"}  # not "auto"
    # resuming on a machine that would choose otherwise keeps the run's precision (and its exactness)
    monkeypatch.setattr(precision, "this_cpu", lambda: WITH_BF16)
    capsys.readouterr()
    assert train([*_common(idx_dir, out), "--steps", "6", "--resume", "auto"]) == 0
    output = capsys.readouterr().out
    assert "fp32 (--amp off)" in output and "warning" not in output
    assert load_model(out / "model").metadata["training"]["precision"] == "fp32"
    # an explicit --amp overrides it, saying that exactness is lost
    assert train([*_common(idx_dir, out), "--steps", "8", "--resume", "auto", "--amp", "bf16"]) == 0
    assert "replaces the resumed run's --amp off" in capsys.readouterr().out
    assert load_training_state(list_training_states(out / "checkpoints")[-1])["args"]["amp"] == "bf16"


def test_a_state_saved_with_amp_auto_by_an_earlier_version_resumes_in_bf16(tmp_path, idx_dir, monkeypatch):
    """Earlier versions saved `auto`, which meant bf16 on CPU and CUDA alike."""
    monkeypatch.setattr(precision, "this_cpu", lambda: WITHOUT_BF16)
    out = tmp_path / "run"
    assert train(_common(idx_dir, out, "--amp", "bf16")) == 0
    path = list_training_states(out / "checkpoints")[-1]
    state = load_training_state(path)
    state["args"]["amp"] = "auto"
    save_training_state(path, state)
    assert train([*_common(idx_dir, out), "--steps", "6", "--resume", "auto"]) == 0
    assert load_model(out / "model").metadata["training"]["precision"] == "bf16"
