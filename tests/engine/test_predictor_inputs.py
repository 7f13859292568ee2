"""Arrays handed to :meth:`Predictor.predict` from a notebook are checked, with one ``DataError``
naming the image and what to give.

Before, a coarse label of another size than its image escaped as numpy's ``ValueError: cannot
reshape array of size 100 into shape (256,256)``, a coarse list of the wrong length as a bare
``ValueError``, a ``valid`` mask of another size was silently ignored (an all-ones 3 x 3 mask) or
broadcast, a coarse label read as 0/255 (PIL) went into the network as 255, and a raw uint8 image
(not normalised) was predicted as if normalised: a label and a score with no warning. The
Predictor also had no useful ``repr`` (``<... Predictor object at 0x...>``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import DataError

os.environ.setdefault("SAM2ELNET_THREADS", "1")


@pytest.fixture(scope="module")
def pred() -> Predictor:
    from sam2elnet.model import ModelConfig, build_model

    model = build_model(ModelConfig(size="micro", in_bands=1))
    return Predictor(model, {}, precision="32", batch_size=2)


X = np.random.default_rng(0).random((1, 32, 32), dtype=np.float32)


def test_a_coarse_label_of_another_size_names_the_image(pred: Predictor) -> None:
    with pytest.raises(DataError, match=r"coarse label 0 is \(10, 10\) but image 0 is 32 x 32"):
        pred.predict([X], coarse=[np.zeros((10, 10), bool)])


def test_a_coarse_list_of_another_length_is_a_data_error(pred: Predictor) -> None:
    with pytest.raises(DataError, match="0 coarse labels for 1 image;"):
        pred.predict([X], coarse=[])


def test_a_valid_mask_of_another_size_is_not_ignored(pred: Predictor) -> None:
    with pytest.raises(DataError, match=r"valid mask 0 is \(3, 3\) but image 0 is 32 x 32"):
        pred.predict([X], valid=[np.ones((3, 3), bool)])
    with pytest.raises(DataError, match="2 valid masks for 1 image;"):
        pred.predict([X], valid=[None, None])


def test_a_coarse_label_of_0_255_is_refused(pred: Predictor) -> None:
    """The values read naturally: a constant label "all values 255" (was "values up to 255
    (lowest 255)"), a 0/255 one "values from 0 to 255"."""
    advice = (
        "; give a bool (H, W) mask or 0/1 (sam2elnet.data.raster.read_mask reads 0/255 files "
        "as bool)"
    )
    with pytest.raises(DataError) as err:
        pred.predict([X], coarse=[np.full((32, 32), 255, np.uint8)])
    assert str(err.value) == "coarse label 0 has all values 255" + advice
    two = np.zeros((32, 32), np.uint8)
    two[:4] = 255
    with pytest.raises(DataError) as err:
        pred.predict([X], coarse=[two])
    assert str(err.value) == "coarse label 0 has values from 0 to 255" + advice
    # bool, 0/1 and (1, H, W) masks are taken as before
    a, _ = pred.predict([X], coarse=[np.ones((32, 32), bool)])
    b, _ = pred.predict([X], coarse=[np.ones((1, 32, 32), np.uint8)])
    np.testing.assert_array_equal(a[0], b[0])


def test_an_integer_image_is_not_taken_for_a_normalised_one(pred: Predictor) -> None:
    with pytest.raises(DataError, match="image 0 is uint8: predict takes normalised float"):
        pred.predict([(X * 255).astype(np.uint8)])
    probs, q = pred.predict([X.astype(np.float64)])  # any float dtype is fine
    assert probs[0].shape == (32, 32) and probs[0].dtype == np.float32
    assert q.predicted_iou.shape == (1,)


def test_predict_arrays_coarse_of_another_size(pred: Predictor) -> None:
    with pytest.raises(DataError, match=r"coarse \(1, 10, 10\) does not match"):
        pred.predict_arrays(X[None], coarse=np.zeros((1, 10, 10), np.float32))


def test_repr_says_what_the_predictor_is(pred: Predictor) -> None:
    text = repr(pred)
    assert text.startswith("Predictor(")
    assert "size='micro'" in text and "in_bands=1" in text and "device='cpu'" in text
    assert "precision='32'" in text and "batch_size=2" in text and "path=None" in text
    assert "evaluator='" in text
