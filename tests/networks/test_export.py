# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""Tests of the deployment wrapper: one tensor in / out, TorchScript tracing equals eager (SPEC section 7)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from monai.networks.utils import convert_to_torchscript

from monai_adaptiveclick.networks import AdaptiveClickExportWrapper, create_model


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _input(click_at: tuple[int, int], prev: float = 0.0) -> torch.Tensor:
    x = torch.zeros(1, 4, 64, 64)
    x[:, 0] = torch.rand(64, 64)
    x[:, 1] = prev
    y, xx = click_at
    x[:, 2, y - 2 : y + 3, xx - 2 : xx + 3] = 1.0
    return x


def _trace(net: torch.nn.Module, x: torch.Tensor):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shape-to-int tracer warnings: the graph is specialised to the traced size
        return torch.jit.trace(net, x)


def _reference_probability(outputs: dict, head: str, size: tuple[int, int]) -> np.ndarray:
    """SPEC section 1 written out in numpy from the raw head outputs: weights ``w_q = softmax(class_q)[object]``,
    ``P = sum_q w_q sigmoid(mask_q) / sum_q w_q`` at 1/4 resolution, then the library's bilinear x4 upsampling and
    the crop to the input size (mask-fixed: the logits are upsampled, then ``sigmoid``)."""
    masks = outputs["pred_masks"].double().numpy()
    if head == "mask_fixed":
        up = torch.nn.functional.interpolate(torch.from_numpy(masks), scale_factor=4.0, mode="bilinear")
        return 1.0 / (1.0 + np.exp(-up[..., : size[0], : size[1]].numpy()))
    logits = outputs["pred_logits"].double().numpy()
    weights = np.exp(logits[..., 0]) / np.exp(logits).sum(-1)  # [B, Q]
    sigmoid = 1.0 / (1.0 + np.exp(-masks))
    prob = (weights[:, :, None, None] * sigmoid).sum(1, keepdims=True) / weights.sum(1)[:, None, None, None]
    up = torch.nn.functional.interpolate(torch.from_numpy(prob), scale_factor=4.0, mode="bilinear")
    return up[..., : size[0], : size[1]].numpy()


@pytest.mark.parametrize("head", ["camd", "mask_fixed"])
def test_wrapper_logits_are_the_final_probability_of_spec_section_1(head):
    model = create_model("tiny", in_channels=1, head=head).eval()
    net = AdaptiveClickExportWrapper(model).eval()
    x = torch.cat([_input((20, 30)), _input((50, 10), prev=1.0)])
    with torch.no_grad():
        logits = net(x)
        outputs = model(x)
    assert logits.shape == (2, 1, 64, 64)
    expected = np.clip(_reference_probability(outputs, head, (64, 64)), 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(torch.sigmoid(logits.double()).numpy(), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="AdaptiveClick"):
        AdaptiveClickExportWrapper(torch.nn.Conv2d(4, 1, 1))


@pytest.mark.parametrize("head", ["camd", "mask_fixed"])
def test_torchscript_trace_equals_eager(tmp_path, head):
    model = create_model("tiny", in_channels=1, head=head).eval()
    net = AdaptiveClickExportWrapper(model).eval()
    with torch.no_grad():
        traced = _trace(net, _input((20, 30)))
        path = tmp_path / "model.ts"
        traced.save(str(path))
        reloaded = torch.jit.load(str(path))
        # other clicks and another previous mask change the CAAM attention masks: the graph must follow the data
        for x in (_input((20, 30)), _input((50, 12), prev=1.0), _input((5, 60))):
            eager = net(x)
            torch.testing.assert_close(traced(x), eager, atol=1e-4, rtol=0)
            torch.testing.assert_close(reloaded(x), eager, atol=1e-4, rtol=0)


def test_monai_convert_to_torchscript(tmp_path):
    net = AdaptiveClickExportWrapper(create_model("tiny", in_channels=1)).eval()
    x = _input((30, 30))
    path = tmp_path / "model_monai.ts"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        ts = convert_to_torchscript(net, filename_or_obj=str(path), inputs=[x], use_trace=True, verify=True, atol=1e-4)
        assert path.is_file()
        torch.testing.assert_close(ts(x), net(x), atol=1e-4, rtol=0)
