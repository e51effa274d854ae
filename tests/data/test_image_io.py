# Copyright (c) monai-adaptiveclick contributors. Licensed under the Apache License, Version 2.0.
"""2-D image files: reading images and label images, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from monai_adaptiveclick.data.image_io import read_image_2d, read_label_2d
from monai_adaptiveclick.data.items import BadInputError


def test_read_2d_files(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[1, 2] = (10, 20, 30)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    arr = read_image_2d(tmp_path / "rgb.png")
    assert arr.shape == (3, 6, 8) and arr[:, 1, 2].tolist() == [10, 20, 30]
    pal = Image.fromarray(np.array([[0, 1], [255, 2]], np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253)
    pal.save(tmp_path / "pal.png")
    assert read_label_2d(tmp_path / "pal.png").tolist() == [[0, 1], [255, 2]]
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(BadInputError, match="colour label"):
        read_label_2d(tmp_path / "colour.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(BadInputError, match="broken.png"):
        read_image_2d(tmp_path / "broken.png")
    with pytest.raises(BadInputError, match="not found"):
        read_image_2d(tmp_path / "missing.png")
