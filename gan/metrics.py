"""Distribution distances between sets of feature vectors."""

from __future__ import annotations

import torch


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two (N, D) feature sets (the formula of FID).

    tr(sqrt(S_a S_b)) is computed as tr(sqrt(S_a^1/2 S_b S_a^1/2)), a symmetric PSD matrix, in float64.
    """
    a, b = features_a.double(), features_b.double()
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root_a = _sqrtm_psd(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def kernel_inception_distance(
    features_a: torch.Tensor, features_b: torch.Tensor, subsets: int = 50, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel, mean and std over subsets."""
    a, b = features_a.double(), features_b.double()
    size = min(subset_size, len(a), len(b))
    dims = a.shape[1]
    rng = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=rng)[:size]]
        y = b[torch.randperm(len(b), generator=rng)[:size]]
        kxx = (x @ x.T / dims + 1) ** 3
        kyy = (y @ y.T / dims + 1) ** 3
        kxy = (x @ y.T / dims + 1) ** 3
        off_diagonal = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (size * (size - 1))
        values.append(float(off_diagonal - 2 * kxy.mean()))
    values_t = torch.tensor(values)
    return float(values_t.mean()), float(values_t.std())


def _kth_neighbour_radii(features: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point in the same set."""
    radii = []
    for rows in features.split(chunk):
        distances = torch.cdist(rows, features)
        radii.append(distances.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(radii)


def _inside_any(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    return torch.cat([(torch.cdist(rows, centres) <= radii[None]).any(dim=1) for rows in points.split(chunk)])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): the share of generated samples inside the
    real manifold (k-NN balls around real samples), and the share of real samples inside the generated one."""
    real, fake = real.float(), fake.float()
    precision = _inside_any(fake, real, _kth_neighbour_radii(real, k)).float().mean()
    recall = _inside_any(real, fake, _kth_neighbour_radii(fake, k)).float().mean()
    return float(precision), float(recall)


def nearest_neighbours(
    queries: torch.Tensor, references: torch.Tensor, chunk: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distance from each query to its nearest reference, and that reference's index."""
    found = [torch.cdist(rows, references).min(dim=1) for rows in queries.float().split(chunk)]
    return torch.cat([f.values for f in found]), torch.cat([f.indices for f in found])


def nearest_distances(queries: torch.Tensor, references: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Euclidean distance from each query to its nearest reference."""
    return nearest_neighbours(queries, references, chunk)[0]
