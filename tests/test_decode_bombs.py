"""Decode bombs: files whose decoding cost grows with their structure, not their pixels (gan/testing.py builds them).
Only the first frame is read and frames are never walked; formats other than the image formats are refused unread;
an untrusted file that takes too long is refused and its decoding child killed (gan/decoding.py); a request's files
share a budget of seconds and pixels; a zip's entries are counted before its directory is read. The tests check the
work done (Pillow's own readers' calls counted, what the child answered), not how long it took: bench/fairness.py
times the app under these loads."""

from __future__ import annotations

import io
import zipfile
from collections import Counter

import numpy as np
import pytest
from PIL import GifImagePlugin, Image, TiffImagePlugin

from gan import testing
from gan.decoding import UPLOAD_BUDGET, Budget, fit_files
from gan.errors import ImageInputError
from gan.images import decode_image, fit_image
from gan.uploads import MAX_ZIP_ENTRIES, read_images, zip_entries


@pytest.fixture
def seeks(monkeypatch) -> Counter:
    """Calls to Pillow's frame seeking in TIFF and GIF files while the test runs (counted on the way to the real
    ones)."""
    counts: Counter = Counter()
    for owner in (TiffImagePlugin.TiffImageFile, GifImagePlugin.GifImageFile):
        original = owner._seek

        def counted(self, *args, _original=original, _name=owner.__name__, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(owner, "_seek", counted)
    return counts


@pytest.mark.parametrize(
    "make, reader", [(testing.tiff_of_many_frames, "TiffImageFile"), (testing.gif_of_many_frames, "GifImageFile")]
)
def test_a_file_of_many_frames_gives_its_first_without_walking_the_others(make, reader, seeks):
    image, notes = decode_image(make(), "frames")
    assert image.size == (8, 8) and "the first frame of several" in notes
    assert seeks[reader] <= 3  # the first frame, a look at the second, back: n_frames would walk 100,000 or 1,000,000


def test_formats_beyond_the_image_formats_are_refused_unread(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, "ICO")  # Pillow reads ICO; an upload never needs it
    with pytest.raises(ImageInputError, match="not an image Pillow can read"):
        decode_image(buffer.getvalue(), "icon.ico")


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_with_nearly_the_same_fitted_result():
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 2048)
    pixels = np.stack([ramp[None, :].repeat(2048, 0), ramp[:, None].repeat(2048, 1), np.full((2048, 2048), 99.0)], -1)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels + rng.normal(0, 8, pixels.shape), 0, 255).astype(np.uint8)).save(buffer, "JPEG")
    full, _ = decode_image(buffer.getvalue(), "photo.jpg")
    drafted, notes = decode_image(buffer.getvalue(), "photo.jpg", fitted_to=32)
    assert full.size == (2048, 2048) and drafted.size == (256, 256)  # 1/8 scale: still 4x the 32 px it becomes
    assert "2048x2048 JPEG decoded at 256x256" in notes
    difference = np.abs(np.asarray(fit_image(full, 32, 3), float) - np.asarray(fit_image(drafted, 32, 3), float))
    assert difference.mean() < 2.0


def _good_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 40), 200, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_file_that_takes_too_long_is_refused_and_the_next_file_gets_a_fresh_decoder():
    files = [("chunks.png", testing.png_of_many_chunks()), ("good.png", _good_png())]
    chunks, good = fit_files(files, 32, 1, Budget(None, None), file_limit_s=0.5)
    assert chunks.image is None and chunks.error == "chunks.png: took over 0.5 s to decode: refused as malformed"
    assert good.error is None and good.image.size == (32, 32) and np.asarray(good.image).mean() == 200


def test_a_requests_files_share_a_budget_of_seconds_and_of_pixels():
    slow = [(f"runs-{index}.bmp", testing.bmp_of_short_runs()) for index in range(3)]
    with pytest.raises(ImageInputError, match=r"decoding the images took over 1 s in all \(at runs-"):
        list(fit_files(slow, 32, 1, Budget(seconds=1.0, pixels=None), file_limit_s=0.8))
    buffer = io.BytesIO()
    Image.new("L", (2000, 2000), 90).save(buffer, "PNG")
    large = [(f"large-{index}.png", buffer.getvalue()) for index in range(3)]
    with pytest.raises(ImageInputError, match=r"over 10 megapixels in all \(at large-2.png\)"):
        list(fit_files(large, 32, 1, Budget(seconds=None, pixels=10 * 2**20)))
    assert UPLOAD_BUDGET.seconds < 5  # the app's requests: decoding leaves room in the 5 s no request may pass


def test_a_zips_entries_are_counted_from_its_end_record_before_its_directory_is_read(tmp_path, monkeypatch):
    bomb = tmp_path / "hidden.zip"
    bomb.write_bytes(testing.zip_of_hidden_entries())
    assert zip_entries(str(bomb)) == 600_000

    def never(*args, **kwargs):
        raise AssertionError("zipfile read the directory of a zip over the cap")

    monkeypatch.setattr(zipfile.ZipFile, "__init__", never)
    with pytest.raises(ImageInputError, match=f"over {MAX_ZIP_ENTRIES} entries in all"):
        read_images([str(bomb)])


def test_the_entries_of_all_zips_count_together(tmp_path):
    paths = []
    for index in range(3):  # hidden files count too
        path = tmp_path / f"part-{index}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for entry in range(MAX_ZIP_ENTRIES // 3 + 1):
                archive.writestr(f".h{entry}", b"")
        paths.append(str(path))
    assert zip_entries(paths[0]) == MAX_ZIP_ENTRIES // 3 + 1
    with pytest.raises(ImageInputError, match=f"part-2.zip: the zips list over {MAX_ZIP_ENTRIES} entries"):
        read_images(paths)


@pytest.mark.slow
def test_the_app_refuses_bombs_in_one_line_and_keeps_serving(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    chunks, tiff, good = tmp_path / "chunks.png", tmp_path / "frames.tif", tmp_path / "good.png"
    chunks.write_bytes(testing.png_of_many_chunks())
    tiff.write_bytes(testing.tiff_of_many_frames())
    good.write_bytes(_good_png())
    gallery, table, message, _ = client.predict(
        images=[handle_file(chunks), handle_file(tiff), handle_file(good)], api_name="/score"
    )
    assert {row[0] for row in table["data"]} == {"frames.tif", "good.png"}
    assert "chunks.png: took over 3 s to decode: refused as malformed" in message
    hidden = tmp_path / "hidden.zip"
    hidden.write_bytes(testing.zip_of_hidden_entries())
    with pytest.raises(AppError, match=f"over {MAX_ZIP_ENTRIES} entries in all"):
        client.predict(seed=0, seconds=5, data="images", images=[handle_file(hidden)], api_name="/train")
    assert len(client.predict(seed=1, count=4, api_name="/sample_gallery")) == 4
