"""The self-contained web page: the same rule as stnca, in real headless Chromium."""

import json
import shutil
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from stnca import NCA
from stnca.analysis import predict
from stnca.cli import app
from stnca.export import HEADLESS_CHROMIUM_FLAGS, page_data, web_page
from stnca.scaling import Scaling
from stnca.serialization import save_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
runner = CliRunner()


def random_model(key, **kwargs) -> NCA:
    k_model, k_out, k_bias = jax.random.split(key, 3)
    model = NCA(2, 2, key=k_model, **kwargs)
    # small enough that 100 steps stay O(1) (larger weights blow up: float32 noise grows)
    w_out = 0.01 * jax.random.normal(k_out, model.w_out.shape)
    model = eqx.tree_at(lambda m: m.w_out, model, w_out)
    return eqx.tree_at(lambda m: m.b_out, model, 0.001 * jax.random.normal(k_bias, (4,)))


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no Chromium / ChromeDriver installed (Debian: chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*HEADLESS_CHROMIUM_FLAGS, "--window-size=1200,800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def open_page(browser, path: Path):
    browser.get(path.resolve().as_uri())
    browser.execute_script("window.stnca.pause()")
    browser.get_log("performance")  # start the request log afresh


def requests(browser) -> list[str]:
    messages = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    return [
        m["params"]["request"]["url"]
        for m in messages
        if m["method"] == "Network.requestWillBeSent"
    ]


@pytest.mark.parametrize(
    "settings",
    [
        dict(kernels=("identity", "laplacian"), boundary="periodic", activation="relu"),
        dict(
            kernels=("identity", "gradient_x", "gradient_y", "average", "gradient_magnitude"),
            boundary="fixed",
            activation="tanh",
            hidden_bias=True,
        ),
        dict(kernels=("laplacian", "gradient_y"), boundary="reflect", activation="silu"),
    ],
    ids=["periodic-relu", "fixed-tanh-all-kernels", "reflect-silu"],
)
def test_page_matches_rollout_after_100_steps(browser, tmp_path, key, settings):
    model = random_model(key, scaling=Scaling((0.1, -0.5), (2.0, 0.5)), **settings)
    initial = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), (12, 10, 2)), np.float32)
    page = web_page(model, [("start", initial)], tmp_path / "page.html")
    open_page(browser, page)
    browser.execute_script("window.stnca.load(0)")
    assert browser.execute_script("return window.stnca.step(100)") == 100
    ours = np.asarray(browser.execute_script("return window.stnca.observableState()"))
    expected = np.asarray(predict(model, initial[None], 100, every=100))[0, -1]
    assert 1 < np.abs(expected - initial).max() < 10  # it moved, and did not blow up
    np.testing.assert_allclose(ours.reshape(12, 10, 2), expected, atol=1e-4)
    assert requests(browser) == []


def test_erase_changes_exactly_the_disc(browser, tmp_path, key):
    model = random_model(key, boundary="fixed")
    initial = np.asarray(
        jax.random.uniform(jax.random.fold_in(key, 2), (14, 16, 2), minval=0.2, maxval=1.0)
    )
    page = web_page(model, [("start", initial)], tmp_path / "page.html")
    open_page(browser, page)
    browser.execute_script("window.stnca.load(0); window.stnca.step(3)")
    before = np.asarray(browser.execute_script("return window.stnca.state()")).reshape(14, 16, 4)
    browser.execute_script("window.stnca.perturb(5, 13, 3.5, 'erase')")
    after = np.asarray(browser.execute_script("return window.stnca.state()")).reshape(14, 16, 4)
    rows, columns = np.mgrid[:14, :16]
    disc = (rows - 5) ** 2 + (columns - 13) ** 2 <= 3.5**2  # clipped at the right edge
    np.testing.assert_array_equal(np.any(after != before, axis=-1), disc)
    np.testing.assert_array_equal(after[disc], 0.0)
    browser.execute_script("window.stnca.perturb(2, 2, 1, 'noise')")
    noisy = np.asarray(browser.execute_script("return window.stnca.state()")).reshape(14, 16, 4)
    changed = np.any(noisy != after, axis=-1)
    assert changed[2, 2] and not changed[5, 13] and changed.sum() <= 5
    assert requests(browser) == []


def test_page_is_self_contained(tmp_path, key):
    model = random_model(key)
    page = web_page(model, [("a", np.zeros((6, 6, 2), np.float32))], tmp_path / "page.html")
    text = page.read_text()
    for reference in ("http://", "https://", "src=", "<link", "@import", "url("):
        assert reference not in text, reference
    data = page_data(model, [("a", np.zeros((6, 6, 2), np.float32))])
    weights = np.frombuffer(__import__("base64").b64decode(data["w_in"]), "<f4")
    np.testing.assert_array_equal(weights.reshape(model.w_in.shape), model.w_in)


def test_export_web_cli(tmp_path, key):
    model = random_model(key)
    save_model(tmp_path / "model.eqx", model)
    broken = eqx.tree_at(lambda m: m.w_in, model, jnp.full_like(model.w_in, jnp.nan))
    save_model(tmp_path / "nan.eqx", broken)
    np.save(tmp_path / "init.npy", np.zeros((8, 8, 2), np.float32))
    np.save(tmp_path / "rgba.npy", np.zeros((8, 8, 4), np.float32))
    out = tmp_path / "web"

    def invoke(*args):
        return runner.invoke(app, ["export", "web", *[str(a) for a in args]])

    done = invoke(tmp_path / "model.eqx", "--init", tmp_path / "init.npy", "--out", out)
    assert done.exit_code == 0, done.output
    assert (out / f"{tmp_path.name}.html").stat().st_size > 0  # a run folder's name
    shipped = invoke("gray_scott_paper", "--out", out)
    assert shipped.exit_code == 0 and (out / "gray_scott_paper.html").is_file()
    for args, message in (
        ((tmp_path / "init.npy", "--out", tmp_path / "x"), "is not an stnca file"),
        (
            (tmp_path / "model.eqx", "--init", tmp_path / "rgba.npy", "--out", tmp_path / "y"),
            "must have shape (H, W, 2)",
        ),
        ((tmp_path / "model.eqx", "--out", tmp_path / "z"), "give --init"),
        (
            (tmp_path / "nan.eqx", "--init", tmp_path / "init.npy", "--out", tmp_path / "w"),
            "the model's weights hold NaN or infinite values",
        ),
    ):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1
        assert not args[-1].exists()


@pytest.mark.parametrize("name", ["gray_scott_paper", "emoji_morph_cpu"])
def test_shipped_models_pages_render(browser, tmp_path, name):
    """The shipped models' pages run and draw; screenshots go to $STNCA_SCREENSHOTS if set."""
    import os

    result = runner.invoke(app, ["export", "web", name, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    open_page(browser, tmp_path / f"{name}.html")
    browser.execute_script("window.stnca.load(0)")
    browser.execute_script("window.stnca.step(96)")
    colours = browser.execute_script(
        """const canvas = document.getElementById('lattice');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const seen = new Set();
        for (let i = 0; i < pixels.length; i += 4)
            seen.add(pixels[i] * 65536 + pixels[i + 1] * 256 + pixels[i + 2]);
        return seen.size;"""
    )
    assert colours > 20  # a pattern, not a blank or flat canvas
    state = np.asarray(browser.execute_script("return window.stnca.state()"))
    assert np.all(np.isfinite(state))
    folder = Path(os.environ.get("STNCA_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(folder / f"web_{name}.png"))
    assert requests(browser) == []


def test_an_image_chosen_on_the_page_becomes_the_state(browser, tmp_path, key):
    from PIL import Image

    model = NCA(4, 2, boundary="fixed", key=key)
    page = web_page(
        model,
        [("empty", np.zeros((12, 12, 4), np.float32))],
        tmp_path / "page.html",
        image_box=(2, 3, 8, 8),
    )
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (8, 8, 4)).astype(np.uint8)
    rgba[..., 3] = np.where(rng.random((8, 8)) < 0.5, 255, 0)  # opaque or transparent cells
    Image.fromarray(rgba, "RGBA").save(tmp_path / "picture.png")
    open_page(browser, page)
    browser.find_element("id", "file").send_keys(str(tmp_path / "picture.png"))
    for _ in range(50):
        state = np.asarray(browser.execute_script("return window.stnca.state()"))
        if np.any(state != 0):
            break
        __import__("time").sleep(0.1)
    state = state.reshape(12, 12, 6)
    alpha = rgba[..., 3:] / 255
    expected = np.concatenate([rgba[..., :3] / 255 * alpha, alpha], axis=-1)  # premultiplied
    np.testing.assert_allclose(state[2:10, 3:11, :4], expected, atol=1 / 255)
    outside = np.ones((12, 12), bool)
    outside[2:10, 3:11] = False
    assert np.all(state[outside] == 0) and np.all(state[..., 4:] == 0)
    assert browser.execute_script("return window.stnca.steps()") == 0
