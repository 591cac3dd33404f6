"""Sample-quality evaluation of a generator against its dataset, in the project's domain feature space.

Reports Frechet distance, KID and k-NN precision/recall between N generated and N real training images,
the same numbers for held-out real test images (the real-vs-real reference a generator should approach),
and a memorisation check: how close generated samples sit to their nearest training image in pixel space,
compared with how close real test images sit to theirs.
"""

from __future__ import annotations

import torch

from .data import ImageDataset
from .metrics import frechet_distance, kernel_inception_distance, nearest_distances, precision_recall
from .models import Generator
from .sampling import generate, latents_for_seeds

MEMORISATION_SAMPLES = 1000


def _subset(images: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    return images[order[: min(count, len(images))]]


def feature_scores(real: torch.Tensor, fake: torch.Tensor, kid_subsets: int = 50) -> dict[str, float]:
    kid, kid_std = kernel_inception_distance(real, fake, subsets=kid_subsets)
    precision, recall = precision_recall(real, fake)
    return {
        "fd": round(frechet_distance(real, fake), 4),
        "kid": round(kid, 6),
        "kid_std": round(kid_std, 6),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
    }


def evaluate_generator(
    generator: Generator,
    features,
    train: ImageDataset,
    num: int = 10_000,
    test: ImageDataset | None = None,
    first_seed: int = 0,
) -> dict:
    """Scores of `num` samples (seeds first_seed...) against `num` training images in the space of
    `features` (uint8 images -> (N, D)); with `test`, the real-vs-real reference and the memorisation check too."""
    fake_images = generate(generator, latents_for_seeds(first_seed, num, generator.config.nz))
    real_images = _subset(train.images, num, seed=1)
    real = features(real_images)
    result = {"num": num, **feature_scores(real, features(fake_images))}
    if test is not None:
        reference = feature_scores(real, features(_subset(test.images, num, seed=2)))
        result["real_vs_real"] = reference
        train_pixels = train.images.flatten(1).float() / 255
        fake_near = nearest_distances(fake_images[:MEMORISATION_SAMPLES].flatten(1).float() / 255, train_pixels)
        test_near = nearest_distances(test.images[:MEMORISATION_SAMPLES].flatten(1).float() / 255, train_pixels)
        fake_median, test_median = fake_near.median().item(), test_near.median().item()
        result["memorisation"] = {
            "generated_to_train_median": round(fake_median, 4),
            "test_to_train_median": round(test_median, 4),
            # None where the test images themselves occur in the training set (distance 0)
            "ratio": round(fake_median / test_median, 4) if test_median > 0 else None,
            "note": "ratio well below 1 means samples sit closer to training images than unseen real images do",
        }
    return result


def _mean_pairwise_distance(features: torch.Tensor) -> float:
    return torch.pdist(features[:500]).mean().item()


class TrainingEvaluator:
    """Cheap evaluation during training: `num` samples against a fixed set of `num` real images."""

    def __init__(self, features, train: ImageDataset, num: int = 1000):
        self.features = features
        self.num = num
        self.real = features(_subset(train.images, num, seed=1))
        self.real_diversity = _mean_pairwise_distance(self.real)

    def __call__(self, generator: Generator) -> dict[str, float]:
        fake = self.features(generate(generator, latents_for_seeds(0, self.num, generator.config.nz)))
        scores = feature_scores(self.real, fake, kid_subsets=10)
        scores["diversity"] = round(
            _mean_pairwise_distance(fake) / self.real_diversity, 4
        )  # 1 = as varied as real data
        return scores
