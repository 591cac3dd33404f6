"""Feature spaces for evaluation: functions from uint8 images (N, C, H, W) to features (N, D).

* Inception-v3 (2048-d pool features, as torch-fidelity computes them for FID), from a local weights file
  (`--inception-weights PATH`: torch-fidelity's `pt_inception-2015-12-05` file, or the same tensors as
  safetensors). Comparable with published FIDs computed the same way.
* A domain space for 28-32 px grayscale data: the project trains its own small classifier on the real training
  set and uses its penultimate layer (128-d). Its weights ship in gan/assets/ with the command that trained them
  and their test accuracy. Distances in this space compare models evaluated here, never published Inception FIDs.
* A pixel space for a colour set without labels (Noto emoji): images area-downsampled to 32x32 RGB, projected on the
  training set's 64 leading principal components. No classifier can be trained without labels, and ~2,000 images a
  side cannot estimate a 2048-d covariance; 64 dimensions can. It sees colour, shape and layout at 32 px, not the
  finest detail of a 64 px image: its real-against-real floor says how far it can tell two halves of the set apart.
  Other colour and folder datasets have no offline feature space: no score is made up for them.

Fit (seconds for the PCA; a few minutes on 2 CPU cores for the classifier):
    python -m gan train-features --dataset fashion-mnist
    python -m gan train-features --dataset noto-emoji
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from .data import SOURCES, load_dataset
from .errors import GanError
from .files import atomic_write
from .images import uint8_to_model_input

ASSETS = Path(__file__).resolve().parent / "assets"
FEATURE_SIZE = 128
CLASSIFIER_DATASETS = ("mnist", "fashion-mnist")  # labelled grey sets: the domain classifier
PCA_DATASETS = ("noto-emoji",)  # colour sets without labels: the pixel PCA
PCA_SIDE, PCA_COMPONENTS = 32, 64
FEATURE_DATASETS = tuple(
    sorted(p.name.removesuffix("-features.safetensors") for p in ASSETS.glob("*-features.safetensors"))
)


class DomainClassifier(nn.Module):
    """A small CNN for 32x32 grayscale images in [-1, 1]; `features` gives its 128-d penultimate layer."""

    def __init__(self, classes: int = 10):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.body = nn.Sequential(
            *block(1, 16),
            nn.MaxPool2d(2),
            *block(16, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, FEATURE_SIZE),
            nn.ReLU(True),
        )
        self.head = nn.Linear(FEATURE_SIZE, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != 32:  # 64 px models are compared at the classifier's resolution
            images = F.interpolate(images, size=(32, 32), mode="area")
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def weights_path(dataset: str) -> Path:
    return ASSETS / f"{dataset}-features.safetensors"


def _load_weights(dataset: str) -> dict[str, torch.Tensor]:
    path = weights_path(dataset)
    if not path.is_file():
        raise GanError(
            f"no offline feature space for {dataset}: there are for {', '.join(FEATURE_DATASETS)} "
            f"(fit one with `python -m gan train-features --dataset {dataset}` where the data is available, for "
            f"{', '.join(CLASSIFIER_DATASETS + PCA_DATASETS)}); other colour and folder datasets have no offline score"
        )
    return load_file(path)


def load_feature_network(dataset: str, device: str | torch.device = "cpu") -> DomainClassifier:
    state = _load_weights(dataset)
    network = DomainClassifier()
    network.load_state_dict(state)
    return network.to(device).eval()


class DomainFeatures:
    """uint8 (N, 1, H, W) -> the domain classifier's 128-d features."""

    name = "domain classifier"

    def __init__(self, dataset: str, device: str | torch.device = "cpu"):
        self.network = load_feature_network(dataset, device)
        self.name = f"{dataset} domain classifier (gan/features.py)"

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        device = next(self.network.parameters()).device
        return torch.cat(
            [self.network.features(uint8_to_model_input(c).to(device)).float().cpu() for c in images.split(batch_size)]
        )


def _pca_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> (N, 3 * PCA_SIDE**2) floats in [0, 1], area-downsampled."""
    pixels = images.float() / 255
    if pixels.shape[-1] != PCA_SIDE:
        pixels = F.interpolate(pixels, size=(PCA_SIDE, PCA_SIDE), mode="area")
    return pixels.flatten(1)


class PixelPCAFeatures:
    """uint8 (N, 3, H, W) -> the coordinates of its 32x32 pixels on the training set's leading principal components."""

    def __init__(self, dataset: str, device: str | torch.device = "cpu"):
        state = _load_weights(dataset)
        self.mean, self.components = state["mean"], state["components"]  # (D,), (D, PCA_COMPONENTS)
        self.name = f"{dataset} pixel PCA ({PCA_COMPONENTS} components of {PCA_SIDE}x{PCA_SIDE} RGB, gan/features.py)"

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        return torch.cat([(_pca_pixels(c.cpu()) - self.mean) @ self.components for c in images.split(batch_size)])


def fit_pixel_pca(dataset: str, data_dir: str | None = None) -> dict:
    """The training set's leading principal components of its 32x32 pixels, saved to gan/assets/."""
    start = time.time()
    train = load_dataset(dataset, data_dir, image_size=SOURCES[dataset].image_size, download=False)
    pixels = _pca_pixels(train.images).double()
    mean = pixels.mean(0)
    _, singular, right = torch.linalg.svd(pixels - mean, full_matrices=False)
    variance = singular**2
    state = {"mean": mean.float(), "components": right[:PCA_COMPONENTS].T.float().contiguous()}
    report = {
        "dataset": dataset,
        "kind": "pixel-pca",
        "images": len(train),
        "components": PCA_COMPONENTS,
        "side": PCA_SIDE,
        "explained_variance": round((variance[:PCA_COMPONENTS].sum() / variance.sum()).item(), 4),
        "fit_time_s": round(time.time() - start, 1),
        "command": f"python -m gan train-features --dataset {dataset}",
        "torch": torch.__version__,
    }
    _save(dataset, state, report)
    return report


class InceptionFeatures:
    """uint8 (N, 1 or 3, H, W) -> Inception-v3 2048-d pool features, via torch-fidelity's FID network."""

    def __init__(self, weights: str | Path, device: str | torch.device = "cpu"):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        weights = Path(weights)
        try:
            state = (
                load_file(weights)
                if weights.suffix == ".safetensors"
                else torch.load(weights, map_location="cpu", weights_only=True)
            )
        except Exception as error:  # unreadable, or a pickle holding more than tensors
            raise GanError(
                f"{weights} is not an Inception-v3 weights file (safetensors or a tensors-only .pth): {error}"
            ) from None
        # torch-fidelity unpickles the path it is given; hand it only our own serialisation of the tensors read above
        with tempfile.TemporaryDirectory() as folder:
            torch.save(state, Path(folder) / "inception.pth")
            try:
                self.network = FeatureExtractorInceptionV3(
                    "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(Path(folder) / "inception.pth")
                )
            except RuntimeError as error:
                raise GanError(
                    f"{weights} does not fit torch-fidelity's Inception-v3 ({str(error).splitlines()[0]})"
                ) from None
        self.network.to(device)
        self.name = f"Inception-v3 pool3 ({weights.name})"

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
        device = next(self.network.parameters()).device
        chunks = [chunk.expand(-1, 3, -1, -1) if chunk.shape[1] == 1 else chunk for chunk in images.split(batch_size)]
        return torch.cat([self.network(chunk.to(device))[0].cpu() for chunk in chunks])


def feature_extractor(dataset: str, inception_weights: str | None = None, device: str | torch.device = "cpu"):
    """Inception features when a weights file is given, else the dataset's own offline space (or a clear error)."""
    if inception_weights:
        return InceptionFeatures(inception_weights, device)
    return PixelPCAFeatures(dataset, device) if dataset in PCA_DATASETS else DomainFeatures(dataset, device)


@torch.inference_mode()
def accuracy(network: DomainClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    predictions = torch.cat([network(uint8_to_model_input(chunk)).argmax(1) for chunk in images.split(500)])
    return (predictions == labels).float().mean().item()


def train_feature_network(dataset: str, epochs: int = 3, seed: int = 0, data_dir: str | None = None) -> dict:
    """Train the domain classifier on the training split, report test accuracy, and save it to gan/assets/."""
    if dataset not in CLASSIFIER_DATASETS:
        raise GanError(f"domain feature networks are for {' and '.join(CLASSIFIER_DATASETS)} (28-32 px grayscale)")
    torch.manual_seed(seed)
    train, test = (load_dataset(dataset, data_dir, download=False, split=s) for s in ("train", "test"))
    network = DomainClassifier()
    optimizer = torch.optim.Adam(network.parameters(), 1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=epochs * (len(train) // 256))
    start = time.time()
    for epoch in range(epochs):
        network.train()
        order = torch.randperm(len(train))
        for index in tqdm(
            order[: len(order) // 256 * 256].view(-1, 256), desc=f"epoch {epoch + 1}/{epochs}", leave=False
        ):
            images = uint8_to_model_input(train.images[index])
            shifted = torch.roll(images, shifts=tuple(torch.randint(-2, 3, (2,)).tolist()), dims=(2, 3))
            loss = F.cross_entropy(network(shifted), train.labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    network.eval()
    report = {
        "dataset": dataset,
        "test_accuracy": round(accuracy(network, test.images, test.labels), 4),
        "epochs": epochs,
        "seed": seed,
        "train_time_s": round(time.time() - start, 1),
        "command": f"python -m gan train-features --dataset {dataset} --epochs {epochs} --seed {seed}",
        "torch": torch.__version__,
    }
    _save(dataset, network.state_dict(), report)
    return report


def _save(dataset: str, state: dict[str, torch.Tensor], report: dict) -> None:
    path = weights_path(dataset)
    atomic_write(path, lambda p: save_file({k: v.contiguous() for k, v in state.items()}, p))
    atomic_write(path.with_suffix(".json"), lambda p: Path(p).write_text(json.dumps(report, indent=2) + "\n"))
