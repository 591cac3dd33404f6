"""The app in a real browser (Debian's Chromium via playwright): click through every tab, as a visitor would.

Most tests run on the tiny test model; one visitor switches to the bundled Fashion-MNIST model with the model
picker and tours every tab on it. Screenshots go to test-artifacts/. Without Chromium or playwright the tests
skip with the reason, except in CI (CI=true), where they must run.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import DEBIAN_FASHION, NOTO_EMOJI_FONT, ROOT
from images_for_tests import blob_pngs, write_test_images, write_zip
from PIL import Image

from gan import BUNDLED_MODELS, explore, load_model
from gan.ui.explore import EXAMPLES

pytestmark = pytest.mark.browser


CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 30_000
FASHION_MODEL, EMOJI_MODEL = BUNDLED_MODELS
FASHION_EXAMPLE = EXAMPLES[FASHION_MODEL.name]
EMOJI_EXAMPLE = EXAMPLES.get(EMOJI_MODEL.name, (("", "", ""), ""))


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -r requirements-dev.txt)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def _open(browser, app):
    """A new visitor (its own session): the page with the first samples shown."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app.url)
    page.get_by_role("button", name="Generate").wait_for(timeout=WAIT_MS)
    page.locator("#singles .thumbnail-item").first.wait_for(timeout=WAIT_MS)
    return page


@pytest.fixture(scope="module")
def page(browser, app):
    page = _open(browser, app)
    yield page
    page.close()


def _pick(page, folder: str, dataset: str) -> None:
    """The visitor picks a bundled model and waits for its summary."""
    page.get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name=f"{folder} (bundled)").click()
    page.get_by_role("button", name="Load model").click()
    _expect()(page.locator("#summary")).to_contain_text(f"Dataset: {dataset}", timeout=WAIT_MS)


def _expect():
    from playwright.sync_api import expect

    return expect


def _png_text(page, selector: str) -> dict[str, str]:
    """The PNG metadata of the image the page shows in `selector`, fetched as the browser would."""
    src = page.locator(f"{selector} img").first.get_attribute("src")
    with urllib.request.urlopen(src, timeout=30) as response:
        return Image.open(io.BytesIO(response.read())).text


def _natural_width(image) -> int:
    """The image's pixel width once it has loaded (the element appears before its file does). One element handle
    throughout: Gradio may replace the element meanwhile, and the locator would then find the new, unloaded one."""
    handle = image.element_handle()
    image.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=handle, timeout=WAIT_MS)
    return handle.evaluate("img => img.naturalWidth")


def test_sample_tab_shows_a_grid(page):
    page.get_by_role("button", name="Generate").click()
    grid = page.locator("img[src*='.png']").first
    grid.wait_for(timeout=WAIT_MS)
    assert _natural_width(grid) >= 400  # upscaled so a 32 px sample is visible
    page.screenshot(path=ARTIFACTS / "sample.png", full_page=True)
    singles = page.locator("#singles .thumbnail-item")
    assert singles.count() == 16 and singles.first.inner_text() == "seed 0"
    assert _natural_width(singles.first.locator("img")) == 32  # native size, scaled by CSS
    assert singles.first.locator("img").evaluate("img => getComputedStyle(img).imageRendering") == "pixelated"


def test_random_seed_changes_the_seed(page):
    seed = page.get_by_label("Seed", exact=True)
    before = seed.input_value()
    for _ in range(3):  # a random draw equal to the old seed is possible, three in a row is not
        page.get_by_role("button", name="Random seed").click()
        page.wait_for_timeout(500)
        if seed.input_value() != before:
            break
    assert seed.input_value() != before
    # and the new seed's samples follow at once
    _expect()(page.locator("#singles .thumbnail-item").first).to_have_text(
        f"seed {seed.input_value()}", timeout=WAIT_MS
    )


def test_a_preset_then_a_click_on_a_sample_checks_it_against_the_training_data(page):
    page.get_by_role("button", name="64 samples").click()
    _expect()(page.locator("#singles .thumbnail-item")).to_have_count(64, timeout=WAIT_MS)
    assert page.get_by_label("Seed", exact=True).input_value() == "2024"
    page.get_by_text("Memorisation check").click()
    page.locator("#singles .thumbnail-item").nth(2).click()
    _expect()(page.locator("#neighbours .thumbnail-item")).to_have_count(9, timeout=WAIT_MS)
    assert page.get_by_label("Seed to check").input_value() == "2026"
    assert page.locator("#neighbours .thumbnail-item").first.inner_text() == "seed 2026"
    page.get_by_text("nearest of 64 mnist training images").wait_for(timeout=WAIT_MS)


def test_interpolate_tab_shows_an_animation_and_frames(page):
    page.get_by_role("tab", name="Interpolate").click()
    page.get_by_role("button", name="Interpolate").click()
    page.locator("img[src*='.gif']").first.wait_for(timeout=WAIT_MS)
    assert page.locator("img[src*='.png']").count() >= 1
    page.screenshot(path=ARTIFACTS / "interpolate.png", full_page=True)


def test_interpolate_preset_sets_ping_pong_and_runs(page):
    before = page.locator("img[src*='.gif']").first.get_attribute("src")
    page.get_by_role("button", name="3 to 17 and back, smooth").click()
    _expect()(page.locator("img[src*='.gif']").first).not_to_have_attribute("src", before, timeout=WAIT_MS)
    assert page.get_by_label("Ping-pong loop (there and back)").is_checked()
    assert page.get_by_label("Start seed").input_value() == "3" and page.get_by_label("End seed").input_value() == "17"


def test_project_tab_projects_an_upload_and_walks_from_it(page, tmp_path):
    files = write_test_images(tmp_path)
    page.get_by_role("tab", name="Project").click()
    page.locator("#project-upload input[type='file']").set_input_files(str(files["rgb.jpg"]))
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Project", exact=True).click()
    page.locator("#project-reconstruction img").wait_for(timeout=WAIT_MS)
    _expect()(page.locator("#project-report")).to_contain_text("Distance", timeout=WAIT_MS)
    assert page.locator("#project-report").get_by_text("RGB converted to grayscale").count() == 1
    distance = float(page.locator("#project-report strong").first.inner_text().split()[1])  # "Distance 0.1234"
    assert 0 <= distance < 1 and abs(float(_png_text(page, "#project-reconstruction")["distance"]) - distance) < 1e-4
    target = page.locator("#project-target img")
    assert _natural_width(target) == 32 and target.evaluate("img => img.width") >= 128  # scaled by CSS
    assert page.locator("#project-curve img").count() == 1
    _expect()(page.locator("#z-a")).to_contain_text("z-rgb-", timeout=WAIT_MS)  # the latent, ready to download or walk
    page.get_by_role("button", name="Interpolate from this image").click()
    page.locator("#walk-animation img[src*='.gif']").wait_for(timeout=WAIT_MS)
    assert _png_text(page, "#walk-strip")["seed_b"] == "1"
    page.screenshot(path=ARTIFACTS / "project.png", full_page=True)


def test_score_tab_scores_an_upload_and_names_a_bad_one(page, tmp_path):
    files = write_test_images(tmp_path)
    page.get_by_role("tab", name="Score").click()
    page.locator("#score-upload input[type='file']").set_input_files([str(files["rgb.jpg"]), str(files["notes.txt"])])
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Score").click()
    page.get_by_text("notes.txt: not an image").wait_for(timeout=WAIT_MS)
    assert page.get_by_role("cell", name="rgb.jpg").count() >= 1
    assert page.get_by_text("not a calibrated detector").count() == 1
    assert page.get_by_text("RGB converted to grayscale").count() >= 1  # the conversion, made explicit
    text = _png_text(page, "#histogram")
    assert (text["generated_scores"], text["uploads"]) == ("512", "1")
    page.screenshot(path=ARTIFACTS / "score.png", full_page=True)


def test_score_a_folder_and_the_example_images(page, tmp_path):
    folder = tmp_path / "shirts"
    folder.mkdir()
    files = write_test_images(tmp_path / "all")
    for name in ("good.png", "palette.png", "sixteen.png"):
        (folder / name).write_bytes(files[name].read_bytes())
    page.locator("#score-folder input[type='file']").set_input_files(str(folder))
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Score").click()
    page.get_by_role("cell", name="palette.png").wait_for(timeout=WAIT_MS)
    assert page.get_by_role("cell", name="sixteen.png").count() == 1
    page.get_by_role("button", name="drawn", exact=True).click()
    page.get_by_role("cell", name="drawn-tshirt.png").wait_for(timeout=WAIT_MS)


def test_fashion_mnist_model_in_every_tab(browser, app):
    """A visitor picks the bundled model: real Fashion-MNIST samples, their nearest training images (where
    Debian's Fashion-MNIST is installed), an interpolation, scores against real-data scores, and a drawn image
    projected into the latent space and walked to a second projected one."""
    expect = _expect()
    page = _open(browser, app)
    try:
        before = page.locator("#grid img").get_attribute("src")
        _pick(page, "dcgan-fashion-mnist", "fashion-mnist")
        expect(page.locator("#grid img")).not_to_have_attribute("src", before, timeout=WAIT_MS)  # resampled on load
        assert _png_text(page, "#grid")["model"] == "dcgan-fashion-mnist"
        page.screenshot(path=ARTIFACTS / "fashion-sample.png", full_page=True)

        page.get_by_text("Memorisation check").click()
        page.locator("#singles .thumbnail-item").nth(5).click()
        expected = (
            "nearest of 60,000 fashion-mnist training images"
            if DEBIAN_FASHION.is_dir()
            else "is not available on this server"
        )
        page.get_by_text(expected).wait_for(timeout=WAIT_MS)
        page.keyboard.press("Escape")
        page.screenshot(path=ARTIFACTS / "fashion-nearest.png", full_page=True)

        page.get_by_role("tab", name="Interpolate").click()
        page.get_by_role("button", name="3 to 17 and back, smooth").click()
        page.locator("img[src*='.gif']").first.wait_for(timeout=WAIT_MS)
        page.screenshot(path=ARTIFACTS / "fashion-interpolate.png", full_page=True)

        page.get_by_role("tab", name="Score").click()
        page.get_by_role("button", name="generated and drawn").click()
        page.get_by_role("cell", name="drawn-sneaker-colour.png").wait_for(timeout=WAIT_MS)
        text = _png_text(page, "#histogram")
        assert text["real_scores"] == ("512" if DEBIAN_FASHION.is_dir() else "0") and text["uploads"] == "5"
        page.screenshot(path=ARTIFACTS / "fashion-score.png", full_page=True)

        page.get_by_role("tab", name="Project").click()  # a drawn T-shirt, walking to a drawn pair of trousers
        page.locator("#project-upload input[type='file']").set_input_files(str(ROOT / "examples" / "drawn-tshirt.png"))
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Project", exact=True).click()
        expect(page.locator("#project-report")).to_contain_text("Distance", timeout=WAIT_MS)
        assert _png_text(page, "#project-reconstruction")["model"] == "dcgan-fashion-mnist"
        page.get_by_text("Or project a second image as the end").click()
        page.locator("#project-end-upload input[type='file']").set_input_files(
            str(ROOT / "examples" / "drawn-trousers.png")
        )
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Project end image").click()
        expect(page.locator("#z-b")).to_contain_text("z-drawn-trousers-", timeout=WAIT_MS)
        page.get_by_role("button", name="Interpolate from this image").click()
        page.locator("#walk-animation img[src*='.gif']").wait_for(timeout=WAIT_MS)
        assert _png_text(page, "#walk-strip")["z_b"].startswith("z-drawn-trousers-")
        page.screenshot(path=ARTIFACTS / "fashion-project.png", full_page=True)
    finally:
        page.close()


def test_explore_and_saliency_on_the_fashion_model(browser, app):
    """A visitor on the bundled model: the paper's kind of arithmetic figure from the preset seeds, the principal
    directions moved by a slider, and the Score tab's saliency maps of a generated sample."""
    expect = _expect()
    page = _open(browser, app)
    try:
        _pick(page, "dcgan-fashion-mnist", "fashion-mnist")

        page.get_by_role("tab", name="Explore").click()
        expect(page.locator("#seeds-a textarea")).to_have_value(FASHION_EXAMPLE[0][0], timeout=WAIT_MS)  # its example
        expect(page.locator("#arithmetic-example")).to_contain_text(FASHION_EXAMPLE[1])
        page.get_by_role("button", name="Compute A - B + C").click()
        expect(page.locator("#arithmetic-z")).to_contain_text("z-arithmetic-", timeout=WAIT_MS)
        text = _png_text(page, "#arithmetic-figure")
        group_a = ", ".join(f"seed {seed.strip()}" for seed in FASHION_EXAMPLE[0][0].split(","))
        assert (text["model"], text["group_a"]) == ("dcgan-fashion-mnist", group_a)
        assert _natural_width(page.locator("#arithmetic-result img")) == 32
        page.screenshot(path=ARTIFACTS / "fashion-explore-arithmetic.png", full_page=True)

        page.get_by_role("tab", name="Directions").click()
        page.get_by_role("button", name="Show directions").click()
        page.locator("#directions-strips img").wait_for(timeout=WAIT_MS)
        first = explore.principal_directions(load_model(FASHION_MODEL).generator).variance[0]
        expect(page.locator("#directions-variance")).to_contain_text(str(round(100 * float(first), 2)), timeout=WAIT_MS)
        before = page.locator("#directions-sample img").get_attribute("src")
        number = page.locator("#direction-1 input[type='number']")
        number.fill("2")
        number.press("Tab")  # a slider's release (here: its number box losing focus) redraws the sample
        expect(page.locator("#directions-sample img")).not_to_have_attribute("src", before, timeout=WAIT_MS)
        assert _png_text(page, "#directions-sample")["d1"] == "2.0"
        page.screenshot(path=ARTIFACTS / "fashion-explore-directions.png", full_page=True)

        page.get_by_role("tab", name="Score").click()
        page.locator("#saliency-seed input").fill("18")
        page.get_by_role("button", name="Show saliency maps").click()
        expect(page.locator("#saliency .thumbnail-item")).to_have_count(1, timeout=WAIT_MS)
        assert page.locator("#saliency .thumbnail-item").first.inner_text().endswith("seed 18")
        assert page.get_by_text("This shows sensitivity, not reasons.").count() == 1
        page.screenshot(path=ARTIFACTS / "fashion-saliency.png", full_page=True)
    finally:
        page.close()


@pytest.mark.skipif(not (EMOJI_MODEL / "config.json").is_file(), reason="models/dcgan-noto-emoji is not here")
def test_the_colour_emoji_model_in_sample_and_explore(browser, app):
    """A visitor picks the bundled 64 px colour model: colour samples checked against the real emoji (where the font
    is installed), then its own arithmetic example and the directions."""
    expect = _expect()
    page = _open(browser, app)
    try:
        _pick(page, "dcgan-noto-emoji", "noto-emoji")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#singles img')].some(i => i.complete && i.naturalWidth === 64)",
            timeout=WAIT_MS,
        )
        assert _png_text(page, "#grid")["model"] == "dcgan-noto-emoji"
        page.screenshot(path=ARTIFACTS / "emoji-sample.png", full_page=True)

        page.get_by_text("Memorisation check").click()
        page.locator("#singles .thumbnail-item").nth(2).click()
        expected = "nearest of 3,916 noto-emoji training images" if NOTO_EMOJI_FONT.is_file() else "not available"
        page.get_by_text(expected).wait_for(timeout=WAIT_MS)
        page.keyboard.press("Escape")
        page.screenshot(path=ARTIFACTS / "emoji-nearest.png", full_page=True)

        page.get_by_role("tab", name="Explore").click()
        seeds = EMOJI_EXAMPLE[0]
        expect(page.locator("#seeds-a textarea")).to_have_value(seeds[0], timeout=WAIT_MS)
        page.get_by_role("button", name="Compute A - B + C").click()
        expect(page.locator("#arithmetic-z")).to_contain_text("z-arithmetic-", timeout=WAIT_MS)
        assert _png_text(page, "#arithmetic-figure")["group_c"] == ", ".join(f"seed {s}" for s in seeds[2].split(", "))
        assert _natural_width(page.locator("#arithmetic-result img")) == 64
        page.screenshot(path=ARTIFACTS / "emoji-explore-arithmetic.png", full_page=True)

        page.get_by_role("tab", name="Directions").click()
        page.get_by_role("button", name="Show directions").click()
        page.locator("#directions-strips img").wait_for(timeout=WAIT_MS)
        page.screenshot(path=ARTIFACTS / "emoji-explore-directions.png", full_page=True)
    finally:
        page.close()


def test_train_tab_shows_the_run_live_then_the_model_is_the_visitors(browser, app, tmp_path):
    """A visitor trains a tiny model on their own images (or Fashion-MNIST where it is installed): the live view
    mid-run (samples, curves, the sentence on them), then the picker lists and selects their model."""
    expect = _expect()
    page = _open(browser, app)
    try:
        page.get_by_role("tab", name="Train").click()
        if not DEBIAN_FASHION.is_dir():
            page.get_by_label("My images").check()
            archive = write_zip(tmp_path / "blobs.zip", blob_pngs(64))
            page.locator("#train-upload input[type='file']").set_input_files(str(archive))
            page.wait_for_timeout(1000)
        page.get_by_label("tiny (8): quick, blurry").check()
        budget = page.locator("#train-seconds input[type='number']")
        budget.fill("20")
        budget.press("Tab")
        page.locator("#train-start").click()
        expect(page.locator("#train-explanation")).to_contain_text("Step", timeout=WAIT_MS)
        expect(page.locator("#train-figure img")).to_be_visible(timeout=WAIT_MS)
        page.wait_for_timeout(4000)  # a few more updates
        assert _natural_width(page.locator("#train-grid img")) == 8 * 34 + 2  # seeds 0..63 at native size
        page.screenshot(path=ARTIFACTS / "train-live.png", full_page=True)
        expect(page.locator("#train-explanation")).to_contain_text("Done after", timeout=90_000)
        expect(page.get_by_role("combobox", name="Model")).to_have_value(re.compile("^your model"), timeout=WAIT_MS)
        with page.expect_download(timeout=WAIT_MS) as download:
            page.locator("#train-export").click()
        name = download.value.suggested_filename
        assert name.startswith("dcgan-") and name.endswith(".zip"), name
        page.screenshot(path=ARTIFACTS / "train-done.png", full_page=True)
        page.get_by_role("tab", name="Sample").click()
        page.get_by_role("button", name="Generate").click()
        expect(page.locator("#grid img")).to_be_visible(timeout=WAIT_MS)
        page.wait_for_timeout(1000)
        assert _png_text(page, "#grid")["source"] == "model"  # the visitor's own export
    finally:
        page.close()


def test_a_run_over_the_cap_is_refused_with_an_error_not_on_the_seed(browser, app, tmp_path):
    """Two Train runs from this address already (through gradio_client): the page's Start is refused before it is
    queued, with the cap's sentence as an error like the app's others, not written on the Seed input as a validation
    message would be (as if the seed were wrong)."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from gradio_client.utils import Status

    expect = _expect()
    archive = write_zip(tmp_path / "blobs.zip", blob_pngs(64))
    clients = [Client(app.url, verbose=False, download_files=str(tmp_path / f"c{i}")) for i in range(2)]
    runs = [
        client.submit(
            seed=0, seconds=300, data="images", images=[handle_file(str(archive))], width="tiny", api_name="/train"
        )
        for client in clients
    ]
    page = _open(browser, app)
    try:
        expect(page.get_by_role("tab", name="Train")).to_be_visible()
        admitted = {Status.IN_QUEUE, Status.PROCESSING, Status.ITERATING, Status.PROGRESS}  # in Gradio's queue
        deadline = time.time() + 90
        while not all(run.status().code in admitted for run in runs):
            assert time.time() < deadline, [run.status() for run in runs]
            time.sleep(0.2)
        page.get_by_role("tab", name="Train").click()
        page.locator("#train-start").click()
        sentence = (
            "2 training run(s) from your address are already queued or running (at most 2); wait for one to finish"
        )
        expect(page.locator(".toast-body", has_text=sentence)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_text(sentence)).to_have_count(1)  # in the error alone
        page.screenshot(path=ARTIFACTS / "train-refused.png")  # the viewport: the error shows at its top
    finally:
        page.close()
        for client in clients:  # both before waiting: the queued one ends only after the other
            client.predict(api_name="/stop_training")
        for run in runs:
            with contextlib.suppress(AppError):
                run.result(timeout=120)
