"""Sample-quality evaluation of a generator against its dataset, in the dataset's offline feature space.

Reports Frechet distance, KID and k-NN precision/recall between N generated and N real training images,
the same numbers for held-out real images (the real-vs-real floor a generator should approach), a memorisation
check (how close generated samples sit to their nearest training image in pixel space, compared with how close the
held-out images sit to theirs) and a copy check (the share of samples nearer to a training image than any other
real image of another group is to it).

The held-out images are the test split where the set has one. A set without one (Noto emoji) is split in two halves
by its groups, so that an emoji's skin-tone siblings never sit on both sides: samples are then compared with one
half, and the floor is the other half against it, at the same N.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import SOURCES, ImageDataset, load_dataset
from .metrics import (
    frechet_distance,
    kernel_inception_distance,
    nearest_distances,
    nearest_neighbours,
    precision_recall,
)
from .models import Generator
from .sampling import generate, latents_for_seeds

MEMORISATION_SAMPLES = 1000
COPY_CHECK_SAMPLES = 1000


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


def split_by_groups(groups: list[str], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices of two halves of a set that share no group: the groups in a seeded random order, each to the half
    holding fewer images so far."""
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    names = sorted(members)
    halves: tuple[list[int], list[int]] = ([], [])
    for order in torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist():
        min(halves, key=len).extend(members[names[order]])
    return torch.tensor(sorted(halves[0])), torch.tensor(sorted(halves[1]))


@dataclass
class EvaluationSets:
    """The training set (with its groups, for the copy check), the real images that samples are compared with, the
    held-out real images of the floor, and how those two were chosen."""

    train: ImageDataset
    groups: list[str] | None
    reference: ImageDataset
    held_out: ImageDataset
    how: str


def evaluation_sets(dataset: str, data_dir=None, image_size: int = 32) -> EvaluationSets:
    """The training and test splits, or (a set without a test split) two halves of the set by its groups."""
    train = load_dataset(dataset, data_dir, image_size, download=False)
    source = SOURCES[dataset]
    groups = source.image_groups(data_dir)
    if source.test_split:
        test = load_dataset(dataset, data_dir, image_size, download=False, split="test")
        return EvaluationSets(train, groups, train, test, "the test split against the training images")
    halves = [train.subset(i) for i in split_by_groups(groups or [str(i) for i in range(len(train))])]
    kind = "groups" if groups else "images"
    how = f"one half of the {kind} against the other ({len(halves[0])} and {len(halves[1])} images)"
    return EvaluationSets(train, groups, *halves, how)


def copy_check(samples: torch.Tensor, train: ImageDataset, groups: list[str] | None = None) -> dict:
    """The share of uint8 `samples` whose nearest training image (in pixels) is nearer than that image's own nearest
    training image of another group: a sample closer to one training image than any other real image is to it reads
    as a copy. `groups`: one per training image (an emoji's skin tones are one); None: each image its own."""
    fake = samples.flatten(1).float() / 255
    real = train.images.flatten(1).float() / 255
    distance, nearest = nearest_neighbours(fake, real)
    chosen = nearest.unique()
    group_ids = torch.tensor(_group_ids(groups) if groups else range(len(real)))
    others = torch.cdist(real[chosen], real)
    others[group_ids[chosen][:, None] == group_ids[None]] = float("inf")  # the image itself and its siblings
    own_nearest = torch.full((len(real),), float("inf"))
    own_nearest[chosen] = others.min(dim=1).values
    copies = distance < own_nearest[nearest]
    return {
        "samples": len(samples),
        "fraction": round(copies.float().mean().item(), 4),
        "training_images_copied": len(nearest[copies].unique()),
        "unit": "group" if groups else "image",  # what "another" counts in: an emoji's skin tones are one group
    }


def _group_ids(groups: list[str]) -> list[int]:
    ids: dict[str, int] = {}
    return [ids.setdefault(group, len(ids)) for group in groups]


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
