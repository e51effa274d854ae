# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the click type and the disk rasterisation (issue 2 item 4: radius, sign, resolution, device, batch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from monai_adaptiveclick.transforms import (
    Click,
    as_click,
    as_clicks,
    clicks_to_tensors,
    rasterize_click_batch,
    rasterize_clicks,
    scale_click_coordinate,
)


def _disk_count(radius: float) -> int:
    """Number of integer points (dy, dx) with dy^2 + dx^2 <= r^2, counted independently with a double loop."""
    r = int(math.floor(radius))
    return sum(1 for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= radius * radius)


def _numpy_disks(clicks, size, radius):
    """Independent reference: union of disks per sign with plain numpy broadcasting."""
    out = np.zeros((2, *size), dtype=np.float32)
    yy, xx = np.mgrid[: size[0], : size[1]]
    for y, x, positive in clicks:
        out[0 if positive else 1][(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = 1
    return out


def test_click_is_a_named_tuple_equal_to_plain_tuple():
    click = Click(3, 4, True)
    assert click == (3, 4, True)
    assert (click.y, click.x, click.is_positive) == (3, 4, True)
    assert as_click((3.0, np.int64(4), 1)) == Click(3, 4, True)
    assert as_clicks(np.array([[1, 2, 0]])) == [Click(1, 2, False)]
    assert as_clicks(None) == []


@pytest.mark.parametrize(
    "bad, message",
    [((1, 2), "exactly 3"), ((1.5, 2, True), "integer"), ((1, 2, -1), "bool"), ((True, 2, True), "integer")],
)
def test_as_click_rejects_bad_clicks(bad, message):
    with pytest.raises(ValueError, match=message):
        as_click(bad)


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 7.5])
def test_single_disk_pixel_count(radius):
    maps = rasterize_clicks([(32, 32, True)], (64, 64), radius=radius)
    count = int(maps[0].sum())
    assert count == _disk_count(radius)
    assert maps[1].sum() == 0
    if radius >= 5:  # the lattice count approaches the disk area pi r^2
        assert abs(count - math.pi * radius**2) / (math.pi * radius**2) < 0.1


def test_sign_channels_and_values():
    clicks = [(10, 10, True), (40, 50, False), (12, 11, True)]
    maps = rasterize_clicks(clicks, (64, 64), radius=3)
    assert maps.dtype == torch.float32 and maps.shape == (2, 64, 64)
    assert set(torch.unique(maps).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(maps.numpy(), _numpy_disks(clicks, (64, 64), 3))
    assert maps[0, 40, 50] == 0 and maps[1, 40, 50] == 1
    assert maps[0, 10, 10] == 1 and maps[1, 10, 10] == 0


def test_no_clicks_gives_zero_maps():
    assert rasterize_clicks([], (8, 9)).shape == (2, 8, 9)
    assert rasterize_clicks(None, (8, 9)).sum() == 0


def test_resolution_scaling_uses_pixel_centres():
    # 100 px -> 50 px: centre of source pixel c is at (c + 0.5) / 2 - 0.5 in the target.
    assert scale_click_coordinate(0, 100, 50) == 0
    assert scale_click_coordinate(99, 100, 50) == 49
    assert scale_click_coordinate(10, 100, 50) == 5  # 10.5 / 2 - 0.5 = 4.75 -> 5
    assert scale_click_coordinate(3, 10, 20) == 7  # 3.5 * 2 - 0.5 = 6.5 -> 7 (halves up)
    maps = rasterize_clicks([(50, 20, True)], (32, 32), radius=2, source_size=(100, 40))
    y = round((50 + 0.5) * 32 / 100 - 0.5 + 1e-9)
    x = round((20 + 0.5) * 32 / 40 - 0.5 + 1e-9)
    np.testing.assert_array_equal(maps.numpy(), _numpy_disks([(y, x, True)], (32, 32), 2))


def test_radius_is_in_target_pixels():
    small = rasterize_clicks([(5, 5, True)], (64, 64), radius=4, source_size=(16, 16))
    assert int(small[0].sum()) == _disk_count(4)


@pytest.mark.parametrize("click", [(-1, 0, True), (0, 40, False), (100, 3, True)])
def test_click_outside_image_raises(click):
    with pytest.raises(ValueError, match="outside the image"):
        rasterize_clicks([click], (32, 32), source_size=(50, 40))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="radius"):
        rasterize_clicks([(1, 1, True)], (8, 8), radius=-1)
    with pytest.raises(ValueError, match="spatial_size"):
        rasterize_clicks([(1, 1, True)], (8,))
    with pytest.raises(ValueError, match=r"\[B, K, 2\]"):
        rasterize_click_batch(torch.zeros(2, 3), torch.zeros(2), (8, 8))
    with pytest.raises(ValueError, match="signs must"):
        rasterize_click_batch(torch.zeros(1, 2, 2), torch.tensor([[2, 0]]), (8, 8))
    with pytest.raises(ValueError, match="outside the map"):
        rasterize_click_batch(torch.tensor([[[8.0, 0.0]]]), torch.tensor([[1]]), (8, 8))


def test_device_argument_and_padding_slots_ignored():
    maps = rasterize_clicks([(2, 2, False)], (8, 8), device="cpu")
    assert maps.device.type == "cpu"
    coords = torch.tensor([[[2.0, 2.0], [100.0, -50.0]]])  # the second slot is padding: ignored even out of bounds
    signs = torch.tensor([[1, 0]])
    out = rasterize_click_batch(coords, signs, (8, 8), radius=1)
    assert out.device == coords.device
    np.testing.assert_array_equal(out[0].numpy(), _numpy_disks([(2, 2, True)], (8, 8), 1))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 23), st.integers(0, 31), st.booleans()), min_size=0, max_size=6),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([0, 1, 2.5, 5]),
)
def test_batch_equals_per_sample(click_lists, radius):
    size = (24, 32)
    num_points = max(len(c) for c in click_lists)
    packed = [clicks_to_tensors(c, num_points=num_points) for c in click_lists]
    coords = torch.stack([p[0] for p in packed])
    signs = torch.stack([p[1] for p in packed])
    batch = rasterize_click_batch(coords, signs, size, radius=radius)
    assert batch.shape == (len(click_lists), 2, *size)
    for index, clicks in enumerate(click_lists):
        single = rasterize_clicks(clicks, size, radius=radius)
        torch.testing.assert_close(batch[index], single)
        np.testing.assert_array_equal(single.numpy(), _numpy_disks(clicks, size, radius))


def test_clicks_to_tensors_padding():
    coords, signs = clicks_to_tensors([(1, 2, True), Click(3, 4, False)], num_points=4)
    assert coords.dtype == torch.float32 and signs.dtype == torch.int64
    assert coords.tolist() == [[1, 2], [3, 4], [0, 0], [0, 0]]
    assert signs.tolist() == [1, -1, 0, 0]
    with pytest.raises(ValueError, match="do not fit"):
        clicks_to_tensors([(1, 2, True)] * 3, num_points=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rasterize_on_cuda_matches_cpu():
    coords = torch.tensor([[[3.0, 4.0], [10.0, 12.0]]])
    signs = torch.tensor([[1, -1]])
    out = rasterize_click_batch(coords.cuda(), signs.cuda(), (16, 20), radius=3)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), rasterize_click_batch(coords, signs, (16, 20), radius=3))
    assert rasterize_clicks([(3, 4, True)], (16, 20), device="cuda").device.type == "cuda"


# --- float-coordinate disks (SPEC section 10 row 10; REPORT 3.1: d^2 <= r^2 around the unrounded point) ---------


def _pixels(maps: torch.Tensor, channel: int = 0) -> set[tuple[int, int]]:
    return {(int(y), int(x)) for y, x in torch.nonzero(maps[channel]).tolist()}


def test_float_disks_against_hand_computation():
    from monai_adaptiveclick.transforms import rasterize_click_batch as batch

    # centre (1.5, 1.5), r = 1: the four pixels at d^2 = 0.5; the next ring is at d^2 = 2.5
    maps = batch(torch.tensor([[[1.5, 1.5]]]), torch.tensor([[1]]), (4, 4), radius=1, float_coordinates=True)[0]
    assert _pixels(maps) == {(1, 1), (1, 2), (2, 1), (2, 2)}
    # centre (3, 3.6), r = 2: row 3 -> |x - 3.6| <= 2 -> x in 2..5; rows 2, 4 -> |dx| <= sqrt(3) -> 2..5;
    # rows 1, 5 -> dx = 0 needed -> none. 12 pixels (the rounded centre (3, 4) would give 13, shifted right)
    maps = batch(torch.tensor([[[3.0, 3.6]]]), torch.tensor([[-1]]), (8, 8), radius=2, float_coordinates=True)[0]
    assert _pixels(maps, 1) == {(y, x) for y in (2, 3, 4) for x in (2, 3, 4, 5)}
    assert not maps[0].any()
    rounded = batch(torch.tensor([[[3.0, 3.6]]]), torch.tensor([[-1]]), (8, 8), radius=2)[0]
    assert len(_pixels(rounded, 1)) == 13 and (1, 4) in _pixels(rounded, 1)
    # inclusive boundary: (3, 4) from (0, 0) is at d^2 = 25 exactly
    maps = batch(torch.tensor([[[0.0, 0.0]]]), torch.tensor([[1]]), (8, 8), radius=5, float_coordinates=True)[0]
    assert maps[0, 3, 4] == 1 and maps[0, 4, 4] == 0


def test_float_disks_centre_outside_the_map_draw_their_visible_part():
    from monai_adaptiveclick.transforms import rasterize_click_batch as batch

    coords, signs = torch.tensor([[[2.0, -1.5]]]), torch.tensor([[1]])
    maps = batch(coords, signs, (5, 5), radius=2, float_coordinates=True)[0]
    # x = 0 is 1.5 away: |dy| <= sqrt(4 - 2.25) = 1.32 -> rows 1..3; nothing else is within 2
    assert _pixels(maps) == {(1, 0), (2, 0), (3, 0)}
    with pytest.raises(ValueError, match="outside"):
        batch(coords, signs, (5, 5), radius=2)


def test_rasterize_clicks_default_is_unchanged_and_float_option_uses_the_unrounded_mapping():
    clicks = [(3, 7, True), (10, 2, False)]
    default = rasterize_clicks(clicks, (32, 32), radius=5, source_size=(13, 17))
    explicit = rasterize_clicks(
        clicks, (32, 32), radius=5, source_size=(13, 17), float_coordinates=False, mapping="centers"
    )
    assert torch.equal(default, explicit)
    # the rounded mapping, written out: floor((c + 0.5) * target / source)
    centres = [
        (math.floor(3.5 * 32 / 13), math.floor(7.5 * 32 / 17)),
        (math.floor(10.5 * 32 / 13), math.floor(2.5 * 32 / 17)),
    ]
    yy, xx = np.mgrid[:32, :32]
    for channel, (cy, cx) in enumerate(centres):
        assert np.array_equal(default[channel].numpy(), ((yy - cy) ** 2 + (xx - cx) ** 2 <= 25).astype(np.float32))
    exact = rasterize_clicks(clicks, (32, 32), radius=5, source_size=(13, 17), float_coordinates=True)
    for channel, (y, x) in enumerate([(3, 7), (10, 2)]):
        cy, cx = np.float32((y + 0.5) * 32 / 13 - 0.5), np.float32((x + 0.5) * 32 / 17 - 0.5)
        d2 = (yy.astype(np.float32) - cy) ** 2 + (xx.astype(np.float32) - cx) ** 2
        assert np.array_equal(exact[channel].numpy(), (d2 <= 25).astype(np.float32))
    assert not torch.equal(default, exact)
    # SimpleClick mapping target * c / source, float disks
    simple = rasterize_clicks(
        clicks[:1], (32, 32), radius=5, source_size=(13, 17), float_coordinates=True, mapping="simpleclick"
    )
    cy, cx = np.float32(32 * 3 / 13), np.float32(32 * 7 / 17)
    d2 = (yy.astype(np.float32) - cy) ** 2 + (xx.astype(np.float32) - cx) ** 2
    assert np.array_equal(simple[0].numpy(), (d2 <= 25).astype(np.float32))
    with pytest.raises(ValueError, match="mapping"):
        rasterize_clicks(clicks, (32, 32), source_size=(13, 17), mapping="corners")
