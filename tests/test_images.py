"""Safe decoding: each odd or hostile file gets a documented conversion or a clear error naming it."""

from __future__ import annotations

import numpy as np
import pytest
from images_for_tests import png_header_only, write_test_images

from gan.errors import ImageInputError
from gan.images import decode_image, fit_image, fit_upload, image_to_uint8


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_test_images(tmp_path_factory.mktemp("images"))


def test_sixteen_bit_is_scaled_not_clipped(files):
    image, notes = decode_image(files["sixteen.png"])
    array = np.asarray(image)
    assert image.mode == "L" and array.min() == 0 and array.max() == 255
    assert len(np.unique(array)) > 200  # the full range survives, not a clipped 0/255 image
    assert any("scaled to 8 bits" in n for n in notes)


def test_animated_gif_gives_its_first_frame(files):
    image, notes = decode_image(files["animated.gif"])
    assert np.asarray(image.convert("L")).mean() == pytest.approx(200, abs=1)
    assert "the first frame of several" in notes


def test_transparency_is_composited_on_black(files):
    image, notes = decode_image(files["rgba.png"])
    assert image.mode == "RGB" and np.asarray(image).max() == 0
    assert "transparency composited on black" in notes


def test_palette_and_cmyk_become_rgb(files):
    palette, notes = decode_image(files["palette.png"])
    assert palette.mode == "RGB" and "palette expanded" in notes
    cmyk, notes = decode_image(files["cmyk.jpg"])
    assert cmyk.mode == "RGB" and "CMYK converted to RGB" in notes
    red = np.asarray(cmyk)[20, 20]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


@pytest.mark.parametrize(
    "name, message",
    [
        ("empty.png", "empty.png: the file is empty (0 bytes)"),
        ("notes.txt", "notes.txt: not an image"),
        ("truncated.png", "truncated.png: the image data is truncated or corrupt"),
        ("tiny.png", "tiny.png: 1x1 pixels is too small"),
        ("bomb.png", "bomb.png: 400,000,000 pixels is over the limit of 16,777,216 pixels"),
    ],
)
def test_bad_files_raise_a_message_naming_the_file(files, name, message):
    with pytest.raises(ImageInputError) as error:
        decode_image(files[name])
    assert str(error.value).startswith(message)


def test_fit_image_reports_its_conversions(files):
    image, notes = decode_image(files["rgb.jpg"])
    fitted = fit_image(image.crop((0, 0, 64, 40)), 32, 1, notes)
    assert fitted.size == (32, 32) and fitted.mode == "L"
    assert notes == ["64x40 center-cropped to 40x40", "resized to 32x32", "RGB converted to grayscale"]


def test_a_28x28_upload_for_a_32x32_model_is_padded_like_the_training_data():
    """The MNIST family is 28x28 padded by 2 black pixels to 32x32 in training (gan.data); uploads of that size get the
    same, so an object keeps the size the model learned. Other sizes, other models and folder datasets resize."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(1, 256, (28, 28), dtype=np.uint8)
    notes: list[str] = []
    fitted = image_to_uint8(fit_upload(Image.fromarray(pixels), 32, 1, notes))[0].numpy()
    assert notes == ["28x28 padded to 32x32 like the training data"]
    assert np.array_equal(fitted[2:30, 2:30], pixels) and fitted.sum() == pixels.astype(int).sum()  # a black border
    rgb = Image.fromarray(np.stack([pixels] * 3, -1))
    notes = []
    assert np.array_equal(image_to_uint8(fit_upload(rgb, 32, 3, notes))[:, 2:30, 2:30].numpy(), np.stack([pixels] * 3))
    assert notes == ["28x28 padded to 32x32 like the training data"]
    notes = []
    fit_upload(Image.fromarray(pixels), 64, 1, notes)  # another model size: resized as before
    assert notes == ["resized to 64x64"]
    notes = []
    fit_upload(Image.fromarray(np.zeros((30, 30), np.uint8)), 32, 1, notes)
    assert notes == ["resized to 32x32"]
    notes = []
    fit_image(Image.fromarray(pixels), 32, 1, notes)  # what folder datasets use: unchanged, resized
    assert notes == ["resized to 32x32"]


def test_image_over_the_cap_but_under_pillows_guard_is_refused_from_its_header(tmp_path):
    png_header_only(tmp_path / "big.png", 5000, 5000)
    with pytest.raises(ImageInputError, match=r"big.png: 25,000,000 pixels is over the limit"):
        decode_image(tmp_path / "big.png")


def test_encoded_bytes_decode_like_their_file(files, tmp_path):
    """A Hub dataset's image cells are the encoded files as bytes: the same image, the same notes, the same refusals."""
    for name in ("sixteen.png", "palette.png", "cmyk.jpg", "rgba.png", "animated.gif"):
        from_file, notes = decode_image(files[name])
        from_bytes, byte_notes = decode_image(files[name].read_bytes(), f"row 0 ({name})")
        assert np.array_equal(np.asarray(from_file), np.asarray(from_bytes)) and notes == byte_notes
    for name, message in [
        ("empty.png", "row 1: the file is empty (0 bytes)"),
        ("truncated.png", "row 1: the image data is truncated or corrupt"),
        ("notes.txt", "row 1: not an image"),
    ]:
        with pytest.raises(ImageInputError) as error:
            decode_image(files[name].read_bytes(), "row 1")
        assert str(error.value).startswith(message)
    png_header_only(tmp_path / "big.png", 5000, 5000)
    with pytest.raises(ImageInputError, match=r"^image: 25,000,000 pixels is over the limit"):
        decode_image((tmp_path / "big.png").read_bytes())
