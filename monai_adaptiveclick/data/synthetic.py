# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""The synthetic data engine: SynthSeg-style images from label maps, one object per item (SPEC section 11).

SynthSeg (Billot et al., Medical Image Analysis 2023) trains on images synthesised from label maps so that the
network sees label boundaries as intensity edges of every possible contrast. One synthetic item:

1. a label map (:mod:`.label_maps`): a training-safe plane of the sample pack (optionally with procedural clutter
   drawn into its background) or a procedural map (smoothed-noise regions, Voronoi cells, star-shaped blobs);
2. a random square window of it resized (nearest) to ``U(size_range)`` pixels, then a random elastic deformation
   (MONAI ``Rand2DElastic``, nearest);
3. intensities: one Gaussian per label (random mean and spread, the same for every channel or a colour per label
   with probability ``rgb_prob``), modulated by smooth random texture;
4. MONAI corruptions: ``RandBiasField``, ``RandGaussianSmooth`` (blur), ``RandSimulateLowResolution``,
   ``RandGaussianNoise``, ``RandAdjustContrast`` (gamma), then min-max scaling to [0, 1];
5. the object: one connected component of one non-zero label with at least ``min_area`` pixels, drawn with
   probability proportional to the square root of its area (large structures and small nuclei both appear).

:class:`SyntheticObjects` is a deterministic sequence (item ``i`` of seed ``s`` is always the same);
:class:`SynthesizeObjectd` draws a fresh item every call from its MONAI random state (training mixes these into the
real items, see ``engines.training_data``). Both return dataset items of the ARCHITECTURE contract.

Example:
    >>> objects = SyntheticObjects(length=4, seed=0)
    >>> item = objects[1]
    >>> item["image"].shape[1:] == item["label"].shape[1:], item["image"].dtype, bool(item["label"].any())
    (True, dtype('float32'), True)
    >>> bool(np.array_equal(objects[1]["image"], item["image"]))
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import (
    Compose,
    Rand2DElastic,
    RandAdjustContrast,
    RandBiasField,
    RandGaussianNoise,
    RandGaussianSmooth,
    Randomizable,
    RandSimulateLowResolution,
)
from scipy import ndimage as ndi

from .label_maps import PROCEDURAL_GENERATORS, sample_label_maps

__all__ = ["SynthesisOptions", "SynthesizeObjectd", "SyntheticObjects", "load_synthetic", "synthesize_object"]

MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class SynthesisOptions:
    """The random ranges of the synthetic engine (module docstring); recipes override them by name.

    Args:
        channels: image channels of the items (1 or 3).
        size_range: side of the generated square image, pixels ``[low, high]``.
        procedural_share: probability that a label map is procedural rather than a sample-pack plane.
        clutter_prob: probability of procedural clutter in the background of a sample-pack plane.
        max_labels: most labels of a procedural map (or of the clutter).
        window_range: side of the window cut from a sample-pack plane, as a fraction of its shorter side.
        deform_prob: probability of the elastic deformation.
        rgb_prob: probability of a colour per label (3-channel items only); otherwise grey.
        label_spread: largest per-label intensity spread (std of the texture).
        bias_prob, blur_prob, lowres_prob, noise_prob, gamma_prob: probabilities of the MONAI corruptions.
        bias_coeff: ``RandBiasField`` coefficient range.
        blur_sigma: ``RandGaussianSmooth`` sigma range (pixels).
        lowres_zoom: ``RandSimulateLowResolution`` zoom range.
        noise_std: largest ``RandGaussianNoise`` std.
        gamma: ``RandAdjustContrast`` gamma range.
        min_area: smallest object (pixels).
        min_contrast: smallest mean-intensity step between the object's label and any label it touches.
    """

    channels: int = 3
    size_range: tuple[int, int] = (96, 192)
    procedural_share: float = 0.5
    clutter_prob: float = 0.5
    max_labels: int = 12
    window_range: tuple[float, float] = (0.4, 1.0)
    deform_prob: float = 0.5
    rgb_prob: float = 0.3
    label_spread: float = 0.08
    bias_prob: float = 0.5
    bias_coeff: tuple[float, float] = (0.0, 0.4)
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    lowres_prob: float = 0.25
    lowres_zoom: tuple[float, float] = (0.4, 0.9)
    noise_prob: float = 0.5
    noise_std: float = 0.05
    gamma_prob: float = 0.5
    gamma: tuple[float, float] = (0.5, 2.0)
    min_area: int = 30
    min_contrast: float = 0.1

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}.")
        if not 16 <= self.size_range[0] <= self.size_range[1]:
            raise ValueError(f"size_range must be [low, high] with 16 <= low <= high, got {self.size_range}.")
        if not 0 < self.window_range[0] <= self.window_range[1] <= 1:
            raise ValueError(f"window_range must lie in (0, 1] with low <= high, got {self.window_range}.")
        if self.max_labels < 2 or self.min_area < 1:
            raise ValueError(f"max_labels must be >= 2 and min_area >= 1, got {self.max_labels}, {self.min_area}.")
        probabilities = ("procedural_share", "clutter_prob", "deform_prob", "rgb_prob", "bias_prob", "blur_prob")
        for name in probabilities + ("lowres_prob", "noise_prob", "gamma_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}.")

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> SynthesisOptions:
        """Options from a recipe's ``synthetic_options`` (unknown names refused).

        Raises:
            ValueError: an option that :class:`SynthesisOptions` does not have.
        """
        options = dict(options or {})
        unknown = set(options) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(
                f"unknown synthetic options {sorted(unknown)}; known: {[f.name for f in dataclasses.fields(cls)]}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


def _corruptions(options: SynthesisOptions) -> Compose:
    low, high = options.blur_sigma
    return Compose(
        [
            RandBiasField(coeff_range=options.bias_coeff, prob=options.bias_prob),
            RandGaussianSmooth(sigma_x=(low, high), sigma_y=(low, high), prob=options.blur_prob),
            RandSimulateLowResolution(
                prob=options.lowres_prob,
                zoom_range=options.lowres_zoom,
                downsample_mode="area",
                upsample_mode="bilinear",
            ),
            RandGaussianNoise(prob=options.noise_prob, std=options.noise_std),
            RandAdjustContrast(prob=options.gamma_prob, gamma=options.gamma),
        ]
    )


class _Synthesizer:
    """Holds the label-map sources and the MONAI transforms; :meth:`__call__` makes one item from a seed."""

    def __init__(self, options: SynthesisOptions, root: str | Path | None = None) -> None:
        self.options = options
        self.sources = sample_label_maps(root) if options.procedural_share < 1 else {}
        self.deform = Rand2DElastic(
            spacing=(24, 24), magnitude_range=(0, 2), prob=1.0, mode="nearest", padding_mode="border"
        )
        self.corrupt = _corruptions(options)

    def label_map(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
        opts = self.options
        if not self.sources or rng.uniform() < opts.procedural_share:
            name = str(rng.choice(sorted(PROCEDURAL_GENERATORS)))
            return PROCEDURAL_GENERATORS[name](rng, (size, size), int(rng.integers(2, opts.max_labels + 1))), name
        name = str(rng.choice(sorted(self.sources)))
        plane = self.sources[name][int(rng.integers(len(self.sources[name])))]
        window = max(8, int(min(plane.shape) * rng.uniform(*opts.window_range)))
        y0 = int(rng.integers(plane.shape[0] - window + 1))
        x0 = int(rng.integers(plane.shape[1] - window + 1))
        grid = (np.arange(size) * window / size).astype(int)
        labels = plane[y0 + grid[:, None], x0 + grid[None, :]].copy()
        labels = np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int32)
        if rng.uniform() < opts.clutter_prob and (labels == 0).any():
            generator = PROCEDURAL_GENERATORS[str(rng.choice(["noise", "voronoi"]))]
            clutter = generator(rng, (size, size), int(rng.integers(2, opts.max_labels + 1)))
            labels = np.where(labels == 0, clutter + labels.max(), labels)
        return labels, f"sample:{name}"

    def image(self, rng: np.random.Generator, labels: np.ndarray, target: np.ndarray) -> np.ndarray:
        opts = self.options
        count = int(labels.max()) + 1
        colour = opts.channels == 3 and rng.uniform() < opts.rgb_prob
        means = rng.uniform(0, 1, (opts.channels if colour else 1, count))
        # the object's own label differs from every label it touches by at least min_contrast (in some channel)
        value = int(labels[target][0])
        ring = ndi.binary_dilation(target, iterations=2) & ~target
        neighbours = [int(v) for v in np.unique(labels[ring]) if v != value]
        for _ in range(MAX_ATTEMPTS):
            gaps = [np.abs(means[:, value] - means[:, v]).max() for v in neighbours]
            if not gaps or min(gaps) >= opts.min_contrast:
                break
            means[:, value] = rng.uniform(0, 1, means.shape[0])
        spread = rng.uniform(0, opts.label_spread, count)
        texture = ndi.gaussian_filter(rng.standard_normal(labels.shape), rng.uniform(0.5, 3.0))
        texture /= max(float(texture.std()), 1e-8)
        image = means[:, labels] + (spread[labels] * texture)[None]
        image = np.broadcast_to(image, (opts.channels, *labels.shape)).astype(np.float32)
        self.corrupt.set_random_state(seed=int(rng.integers(2**31)))
        image = np.asarray(self.corrupt(torch.from_numpy(np.ascontiguousarray(image))), dtype=np.float32)
        low, high = float(image.min()), float(image.max())
        return ((image - low) / max(high - low, 1e-6)).astype(np.float32)

    def __call__(self, seed: int) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        opts = self.options
        for _ in range(MAX_ATTEMPTS):
            size = int(rng.integers(opts.size_range[0], opts.size_range[1] + 1))
            labels, source = self.label_map(rng, size)
            if rng.uniform() < opts.deform_prob:
                self.deform.set_random_state(seed=int(rng.integers(2**31)))
                labels = np.asarray(self.deform(labels[None].astype(np.float32), spatial_size=labels.shape))[0]
                labels = np.rint(labels).astype(np.int32)
            components, areas = [], []
            for value in np.unique(labels[labels > 0]):
                parts, n = ndi.label(labels == value)
                sizes = np.bincount(parts.ravel(), minlength=n + 1)[1:]
                for index in np.flatnonzero(sizes >= opts.min_area):
                    components.append((parts, index + 1))
                    areas.append(sizes[index])
            if components:
                break
        else:
            raise RuntimeError(f"no object of >= {opts.min_area} pixels in {MAX_ATTEMPTS} synthetic label maps.")
        weights = np.sqrt(np.asarray(areas, dtype=np.float64))
        parts, index = components[int(rng.choice(len(components), p=weights / weights.sum()))]
        target = parts == index
        meta = {"dataset": "synthetic", "source": source, "seed": int(seed), "spacing": (1.0, 1.0)}
        image = self.image(rng, labels, target)
        return {"image": image, "label": target.astype(np.uint8)[None], "object_id": f"synthetic-{seed}", "meta": meta}


def synthesize_object(
    seed: int, options: SynthesisOptions | Mapping[str, Any] | None = None, root: str | Path | None = None
) -> dict[str, Any]:
    """One synthetic dataset item, fully determined by ``seed`` (module docstring).

    Args:
        seed: the random seed of the item.
        options: :class:`SynthesisOptions` or a dict of its fields.
        root: sample pack folder (default: the embedded pack).
    """
    if not isinstance(options, SynthesisOptions):
        options = SynthesisOptions.from_dict(options)
    return _Synthesizer(options, root)(seed)


class SyntheticObjects(Sequence):
    """A fixed-length, deterministic sequence of synthetic items: item ``i`` is generated from seed ``(seed, i)``.

    Args:
        length: number of items.
        seed: the sequence's seed.
        options: :class:`SynthesisOptions` or a dict of its fields.
        root: sample pack folder (default: the embedded pack).
    """

    def __init__(
        self,
        length: int = 1000,
        seed: int = 0,
        options: SynthesisOptions | Mapping[str, Any] | None = None,
        root: str | Path | None = None,
    ) -> None:
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}.")
        if not isinstance(options, SynthesisOptions):
            options = SynthesisOptions.from_dict(options)
        self.length, self.seed = int(length), int(seed)
        self._synthesize = _Synthesizer(options, root)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if not -self.length <= index < self.length:
            raise IndexError(f"synthetic item {index} out of range for length {self.length}.")
        index %= self.length
        return self._synthesize(int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0]))


class SynthesizeObjectd(Randomizable):
    """A MONAI transform that replaces its input with a fresh synthetic item drawn from its random state.

    Used by the training loader to mix synthetic items into the real ones: the input (a placeholder dict) is ignored,
    the output is a dataset item. Deterministic after ``set_random_state``.

    Args:
        options: :class:`SynthesisOptions` or a dict of its fields.
        root: sample pack folder (default: the embedded pack).
    """

    def __init__(self, options: SynthesisOptions | Mapping[str, Any] | None = None, root: str | Path | None = None):
        if not isinstance(options, SynthesisOptions):
            options = SynthesisOptions.from_dict(options)
        self._synthesize = _Synthesizer(options, root)
        self._seed = 0

    def randomize(self, data: Any = None) -> None:
        self._seed = int(self.R.randint(0, 2**31 - 1))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[str, Any]:
        self.randomize()
        return self._synthesize(self._seed)


def load_synthetic(
    root: str | Path | None = None, length: int = 1000, seed: int = 0, **options: Any
) -> SyntheticObjects:
    """The ``synthetic`` dataset of the registry: ``length`` deterministic items (``options``: SynthesisOptions).

    Example:
        >>> len(load_synthetic(length=3, channels=1)), load_synthetic(length=1, channels=1)[0]["image"].shape[0]
        (3, 1)
    """
    return SyntheticObjects(length=length, seed=seed, options=options, root=root)
