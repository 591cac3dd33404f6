"""The quality recipe's parts and the evaluator: metrics on known distributions, DiffAugment, EMA with
recalibrated BatchNorm, evaluation during training with --keep-best, and `python -m gan evaluate`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, TINY_MODEL_ARGS, TINY_MODEL_SETTINGS, needs_fashion_mnist, train

from gan.augment import POLICIES, diff_augment, parse_policy
from gan.checkpoint import load_model
from gan.data import ImageDataset, load_dataset
from gan.evaluation import copy_check, split_by_groups
from gan.features import weights_path
from gan.hub.model_card import model_card
from gan.metrics import frechet_distance, kernel_inception_distance, nearest_distances, precision_recall
from gan.models import Generator, ModelConfig
from gan.training.settings import RunSettings
from gan.training.trainer import Trainer, recalibrate_batchnorm

pytestmark = pytest.mark.slow


needs_feature_network = pytest.mark.skipif(
    not weights_path("fashion-mnist").exists(),
    reason="gan/assets/fashion-mnist-features.safetensors is not trained yet",
)


def test_metrics_on_known_gaussians():
    rng = torch.Generator().manual_seed(0)
    a, b = torch.randn(4000, 8, generator=rng), torch.randn(4000, 8, generator=rng)
    shifted = torch.randn(4000, 8, generator=rng) + 1.0  # FD = |mean shift|^2 = 8
    assert frechet_distance(a, b) < 0.05
    assert frechet_distance(a, shifted) == pytest.approx(8.0, rel=0.05)
    assert (
        abs(kernel_inception_distance(a, b, subsets=5)[0]) < 0.01 < kernel_inception_distance(a, shifted, subsets=5)[0]
    )
    precision, recall = precision_recall(a[:1000], b[:1000])
    assert precision > 0.6 and recall > 0.6
    collapsed = a[:1000] * 0.05  # all samples in one small region: precise, no recall
    precision, recall = precision_recall(a[:1000], collapsed)
    assert precision > 0.9 and recall < 0.1
    # cdist's matrix-multiplication path rounds: a point's distance to itself comes out within ~1e-3 of 0
    torch.testing.assert_close(nearest_distances(a[:10], a), torch.zeros(10), atol=1e-2, rtol=0)


def test_halves_by_group_share_no_group_and_hold_half_the_images_each():
    groups = [f"family{i // 3}" for i in range(30)] + [f"alone{i}" for i in range(31)]
    first, second = split_by_groups(groups)
    assert not {groups[i] for i in first} & {groups[i] for i in second}
    assert sorted(first.tolist() + second.tolist()) == list(range(61)) and abs(len(first) - len(second)) <= 3
    assert [t.tolist() for t in split_by_groups(groups)] == [first.tolist(), second.tolist()]  # seeded
    assert split_by_groups(groups, seed=1)[0].tolist() != first.tolist()


def test_the_copy_check_counts_samples_nearer_a_training_image_than_its_nearest_other_group():
    rng = torch.Generator().manual_seed(0)
    samples = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=rng)
    samples[5:] = 0  # black: farther from every training image than random images are from each other

    def moved(images, where):  # 40 levels away, away from the nearer end (no clamping)
        out = images.clone()
        out[where] = torch.where(out[where] < 128, out[where] + 40, out[where] - 40)
        return out

    copied = moved(samples[:5], (slice(None), 0, slice(0, 4), slice(0, 4)))  # 16 pixels from its sample
    siblings = moved(copied, (slice(None), 1, 10, 10))  # 1 pixel from its copy, 17 from the sample
    noise = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=rng)
    twins = moved(noise, (slice(None), 2, 5, 5))  # real images of other groups with a near neighbour, like a dataset
    train = ImageDataset(torch.cat([copied, siblings, noise, twins]), "test", "memory")
    # image by image, each copy has a nearer other image (its sibling) than its sample: no copies
    assert copy_check(samples, train) == {"samples": 20, "fraction": 0.0, "training_images_copied": 0, "unit": "image"}
    # with each copy and its sibling as one group (an emoji's skin tones), the 5 samples are copies
    groups = [f"g{i}" for i in range(5)] * 2 + [f"noise{i}" for i in range(40)]
    assert copy_check(samples, train, groups) == {
        "samples": 20,
        "fraction": 0.25,
        "training_images_copied": 5,
        "unit": "group",
    }


def test_diffaugment_is_differentiable_and_keeps_shapes():
    assert parse_policy("translation, cutout") == ("translation", "cutout")
    with pytest.raises(ValueError, match="unknown DiffAugment policy flip"):
        parse_policy("flip")
    images = torch.rand(6, 3, 32, 32, requires_grad=True)
    augmented = diff_augment(images * 2 - 1, POLICIES)
    assert augmented.shape == images.shape
    augmented.square().sum().backward()
    assert images.grad.abs().sum() > 0


def test_recalibrated_batchnorm_statistics_match_the_generators_own_activations():
    generator = Generator(ModelConfig(nz=16, ngf=8))
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    recalibrate_batchnorm(generator, torch.device("cpu"), batches=8, batch_size=512)
    first_bn = generator.main[1]
    with torch.no_grad():
        pre = generator.main[0](torch.randn(4096, 16, 1, 1))
    torch.testing.assert_close(first_bn.running_mean, pre.mean(dim=(0, 2, 3)), atol=0.02, rtol=0.05)
    assert not generator.training and first_bn.momentum == 0.1


@pytest.mark.parametrize(("step", "decay"), [(0, 0.0), (40, 0.5**0.5), (10_000, 0.5 ** (1 / 500)), (100_000, 0.999)])
def test_ema_half_life_ramps_up_with_training_then_holds_at_the_chosen_decay(idx_dir, step, decay):
    """Half-life min(693 steps (= decay 0.999), 5% of the steps so far): 2 steps at step 40, capped later."""
    settings = RunSettings(dataset="mnist", **TINY_MODEL_SETTINGS, ema=0.999)
    trainer = Trainer(settings, load_dataset("mnist", idx_dir, download=False), torch.device("cpu"))
    trainer.step = step
    before = [p.clone() for p in trainer.ema.parameters()]
    trainer.train_step(trainer.next_batch())
    for averaged, old, live in zip(trainer.ema.parameters(), before, trainer.generator.parameters(), strict=True):
        torch.testing.assert_close(averaged, decay * old + (1 - decay) * live.detach())
    assert any(not torch.equal(a, b) for a, b in zip(trainer.ema.parameters(), before, strict=True))


@pytest.mark.parametrize(("fraction", "scale"), [(0.0, 1.0), (0.6, 1.0), (0.8, 0.5), (1.0, 0.0)])
def test_lr_decay_holds_then_falls_linearly_to_zero(idx_dir, fraction, scale):
    settings = RunSettings(dataset="mnist", **TINY_MODEL_SETTINGS, lr_g=1e-3, lr_d=4e-4, lr_decay=0.4)
    trainer = Trainer(settings, load_dataset("mnist", idx_dir, download=False), torch.device("cpu"))
    trainer.set_learning_rates(fraction)
    assert trainer.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3 * scale)
    assert trainer.opt_d.param_groups[0]["lr"] == pytest.approx(4e-4 * scale)


def _tiny_fashion_args(out, *extra: str) -> list[str]:
    """train.py flags for a tiny model on Debian's Fashion-MNIST, into `out`."""
    return ["--dataset", "fashion-mnist", "--no-download", *extra, "--out", str(out), *TINY_MODEL_ARGS]


@needs_fashion_mnist
@needs_feature_network
def test_eval_during_training_and_keep_best(tmp_path):
    out = tmp_path / "run"
    assert train(_tiny_fashion_args(out, "--steps", "6", "--eval-every", "2", "--eval-num", "200", "--keep-best")) == 0
    evaluations = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "eval" in r]
    assert [r["step"] for r in evaluations] == [2, 4, 6]
    best = min(evaluations, key=lambda r: r["eval"]["fd"])
    exported = load_model(out / "model").metadata
    assert exported["evaluation"]["step"] == best["step"] and exported["evaluation"]["fd"] == best["eval"]["fd"]
    assert (out / "best" / "model.safetensors").read_bytes() == (out / "model" / "model.safetensors").read_bytes()
    # the export's log and plots are the whole run's, even when an earlier state won
    assert (out / "model" / "metrics.jsonl").read_text() == (out / "metrics.jsonl").read_text()
    assert (out / "model" / "loss.png").read_bytes() == (out / "loss.png").read_bytes()


@needs_fashion_mnist
@needs_feature_network
def test_evaluate_command_prints_json_last(tmp_path):
    out = tmp_path / "run"
    assert train(_tiny_fashion_args(out, "--steps", "2", "--eval-every", "0")) == 0
    result = subprocess.run(
        [sys.executable, "-m", "gan", "evaluate", "--checkpoint", str(out / "model"), "--num", "500", "--save"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["dataset"] == "fashion-mnist" and scores["num"] == 500
    # a barely trained generator is far from the data; real test images are close to it
    assert scores["fd"] > 5 * scores["real_vs_real"]["fd"]
    assert scores["real_vs_real"]["precision"] > 0.5 and scores["real_vs_real"]["recall"] > 0.5
    assert scores["memorisation"]["test_to_train_median"] > 0
    recorded = load_model(out / "model").metadata["evaluation"]  # --save: the export now carries this evaluation
    assert recorded["num"] == 500 and recorded["fd"] == scores["fd"]
    assert recorded["step"] == load_model(out / "model").metadata["training"]["steps"]  # the app shows it
    card = model_card(load_model(out / "model").metadata, "alice/tiny", ["config.json"]).text
    assert (
        f"| `fd` | {scores['fd']} |" in card
        and "real_vs_real" not in card
        and "Real images, the test split against the training images" in card
    )


def test_evaluate_without_a_feature_network_says_so(tiny_run, capsys):
    from gan.cli import main

    assert main(["evaluate", "--checkpoint", str(tiny_run / "model"), "--num", "10"]) == 2
    assert "no offline feature space for mnist" in capsys.readouterr().err


class _Exploit:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_inception_path_with_a_stand_in_weights_file(tmp_path, tiny_run, idx_dir, capsys):
    """The real Inception weights cannot be downloaded here: an untrained network of the same architecture
    stands in for them, through the same file-loading path a user's weights take."""
    from safetensors.torch import save_file
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from gan.cli import main
    from gan.errors import GanError
    from gan.features import InceptionFeatures

    class Untrained(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True):  # keep the random initialisation
            return None

    torch.save({}, tmp_path / "empty.pth")
    torch.manual_seed(0)
    weights = Untrained(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(tmp_path / "empty.pth")
    ).state_dict()
    save_file({k: v.contiguous() for k, v in weights.items()}, tmp_path / "inception.safetensors")
    features = InceptionFeatures(tmp_path / "inception.safetensors")
    out = features(torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8))
    assert out.shape == (3, 2048) and torch.isfinite(out).all()

    assert (
        main(
            [
                "evaluate",
                "--checkpoint",
                str(tiny_run / "model"),
                "--data-dir",
                str(idx_dir),
                "--num",
                "8",
                "--inception-weights",
                str(tmp_path / "inception.safetensors"),
            ]
        )
        == 0
    )
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["feature_space"] == "Inception-v3 pool3 (inception.safetensors)" and scores["fd"] >= 0

    torch.save({"weight": _Exploit()}, tmp_path / "hostile.pth")
    with pytest.raises(GanError, match="is not an Inception-v3 weights file"):
        InceptionFeatures(tmp_path / "hostile.pth")
    assert "unpickled code ran" not in capsys.readouterr().out
