import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from stnca.data.augment import augmented_copies, embed, flip, rotate, translate
from stnca.data.images import emoji_names, image_sequence, load_image, resolve_image
from stnca.stencils import apply_kernel


def save(path, array, mode):
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.fixture
def pictures(tmp_path, rng):
    rgb = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 256, size=(8, 8, 1), dtype=np.uint8)], -1)
    grey = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
    return {
        "rgb": (save(tmp_path / "rgb.png", rgb, "RGB"), rgb),
        "rgba": (save(tmp_path / "rgba.png", rgba, "RGBA"), rgba),
        "grey": (save(tmp_path / "grey.png", grey, "L"), grey),
        "jpeg": (save(tmp_path / "rgb.jpg", rgb, "RGB"), rgb),
    }


def test_rgb_gets_alpha_one(pictures):
    path, rgb = pictures["rgb"]
    image = load_image(path, size=0)
    assert image.shape == (8, 8, 4) and image.dtype == np.float32
    np.testing.assert_allclose(image[..., :3], rgb / 255, atol=1e-6)
    np.testing.assert_array_equal(image[..., 3], 1.0)


def test_rgba_is_premultiplied(pictures):
    path, rgba = pictures["rgba"]
    image = load_image(path, size=None)
    alpha = rgba[..., 3:] / 255
    np.testing.assert_allclose(image[..., 3:], alpha, atol=1e-6)
    np.testing.assert_allclose(image[..., :3], rgba[..., :3] / 255 * alpha, atol=1e-6)


def test_grey_and_jpeg(pictures):
    path, grey = pictures["grey"]
    image = load_image(path, size=0)
    for c in range(3):
        np.testing.assert_allclose(image[..., c], grey / 255, atol=1e-6)
    assert load_image(pictures["jpeg"][0], size=4).shape == (4, 4, 4)


def test_downsampling_averages_areas(pictures):
    path, rgb = pictures["rgb"]
    small = load_image(path, size=4)
    expected = rgb.reshape(4, 2, 4, 2, 3).mean(axis=(1, 3)) / 255
    np.testing.assert_allclose(small[..., :3], expected, atol=1e-5)
    assert load_image(path, size=(6, 3)).shape == (6, 3, 4)


def test_packaged_emoji():
    assert {"alien_monster", "microbe", "rooster"} <= set(emoji_names())
    rooster = load_image(resolve_image("emoji:rooster"), 60)
    assert rooster.shape == (60, 60, 4)
    assert rooster[..., 3].max() == pytest.approx(1.0, abs=1e-3) and rooster[0, 0, 3] == 0
    assert (resolve_image("emoji:rooster").parent / "README.md").is_file()  # licence notice
    with pytest.raises(ValueError, match="unknown packaged image"):
        resolve_image("emoji:dragon")


def test_sequence_repeats_the_final_image(pictures):
    a, b = pictures["rgb"][0], pictures["rgba"][0]
    frames = image_sequence([a, b], size=4, final_repeats=3)
    assert frames.shape == (4, 4, 4, 4)
    np.testing.assert_array_equal(frames[1], frames[2])
    np.testing.assert_array_equal(frames[1], frames[3])
    assert not np.array_equal(frames[0], frames[1])
    assert image_sequence([a, b], size=4, final_repeats=1).shape[0] == 2


def test_bad_images(tmp_path, pictures):
    with pytest.raises(ValueError, match="image not found"):
        load_image(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="is not a readable image"):
        load_image(text)
    big = save(tmp_path / "big.png", np.zeros((10, 12, 3), np.uint8), "RGB")
    with pytest.raises(ValueError, match="different sizes"):
        image_sequence([pictures["rgb"][0], big], size=0)
    assert image_sequence([pictures["rgb"][0], big], size=5).shape == (3, 5, 5, 4)


def test_embedding_pads_with_empty_cells_and_fixed_boundary_sees_zeros(rng):
    frames = rng.uniform(size=(2, 5, 6, 4)).astype(np.float32)
    embedded = np.asarray(embed(frames, 3))
    assert embedded.shape == (2, 11, 12, 4)
    np.testing.assert_array_equal(embedded[:, 3:-3, 3:-3], frames)
    inner = np.ones(embedded.shape, bool)
    inner[:, 3:-3, 3:-3] = False
    assert np.all(embedded[inner] == 0)
    # with fixed boundaries an image touching the edge sees zeros beyond it
    edge = jnp.ones((1, 4, 4, 1))
    lap = np.asarray(apply_kernel(edge, "laplacian", "fixed"))
    assert lap[0, 0, 1, 0] < 0 and lap[0, 1, 1, 0] == 0


def test_translation_keeps_each_copy_aligned(key, rng):
    sequence = np.asarray(embed(rng.uniform(size=(3, 6, 6, 4)).astype(np.float32), 4))
    copies = np.asarray(augmented_copies(sequence, 6, key=key, max_shift=4))
    assert copies.shape == (6,) + sequence.shape
    np.testing.assert_array_equal(copies[0], sequence)
    shifts = set()
    for copy in copies[1:]:
        # find the shift of frame 0 and check every frame moved by the same amount
        found = [
            (dy, dx)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if np.array_equal(copy[0], np.roll(sequence[0], (dy, dx), axis=(0, 1)))
        ]
        assert len(found) == 1
        dy, dx = found[0]
        shifts.add(found[0])
        np.testing.assert_array_equal(copy, np.roll(sequence, (dy, dx), axis=(1, 2)))
        assert np.isclose(copy.sum(), sequence.sum(), rtol=1e-5)  # nothing left the lattice
    assert len(shifts) > 1
    np.testing.assert_array_equal(
        translate(sequence, (1, -2)), np.roll(sequence, (1, -2), axis=(1, 2))
    )


def test_rotation_on_and_off_lattice_and_flips(rng):
    x = rng.uniform(size=(2, 9, 9, 3)).astype(np.float32)
    for k in range(4):
        np.testing.assert_allclose(rotate(x, 90.0 * k), np.rot90(x, k, axes=(1, 2)), atol=1e-5)
    np.testing.assert_array_equal(flip(x), x[:, :, ::-1])
    np.testing.assert_array_equal(flip(x, axis=-3), x[:, ::-1])
    # off-lattice: a 45-degree turn moves a point at distance d from the centre along the circle
    point = np.zeros((1, 21, 21, 1), np.float32)
    point[0, 10, 18] = 1.0  # 8 cells right of the centre
    turned = np.asarray(rotate(point, 45.0))[0, ..., 0]
    r, c = np.unravel_index(np.argmax(turned), turned.shape)
    assert (r, c) in {(4, 16), (5, 15), (4, 15), (5, 16)}  # up-right at ~(10 - 5.66, 10 + 5.66)
    assert turned.sum() == pytest.approx(1.0, abs=0.05)
    # turning a smooth field there and back restores it (up to interpolation smoothing)
    rows, cols = np.meshgrid(np.arange(21), np.arange(21), indexing="ij")
    blob = np.exp(-((rows - 8.0) ** 2 + (cols - 12.0) ** 2) / 18.0)[None, ..., None]
    back = np.asarray(rotate(rotate(blob.astype(np.float32), 30.0), -30.0))
    np.testing.assert_allclose(back, blob, atol=0.05)


def test_augmented_copies_rotate_and_flip_whole_copies(key, rng):
    sequence = np.asarray(embed(rng.uniform(size=(2, 5, 5, 4)).astype(np.float32), 3))
    copies = np.asarray(augmented_copies(sequence, 8, key=key, rotation="lattice", flips=True))
    candidates = []
    for flipped in (sequence, sequence[:, :, ::-1]):
        for k in range(4):
            candidates.append(np.rot90(flipped, k, axes=(1, 2)))
    for copy in copies:
        assert any(np.allclose(copy, c, atol=1e-5) for c in candidates)
    assert len({copy.tobytes() for copy in copies}) > 2
    with pytest.raises(ValueError, match="rotation must be one of"):
        augmented_copies(sequence, 2, key=key, rotation="random")
    anyangle = np.asarray(augmented_copies(sequence, 3, key=jax.random.key(3), rotation="any"))
    assert anyangle.shape == (3,) + sequence.shape


def test_translation_fills_with_zeros_and_never_wraps(rng):
    x = rng.uniform(0.5, 1.0, size=(1, 6, 6, 1)).astype(np.float32)
    moved = np.asarray(translate(x, (2, -3)))
    np.testing.assert_array_equal(moved[0, 2:, :3], x[0, :4, 3:])
    assert np.all(moved[0, :2] == 0) and np.all(moved[0, :, 3:] == 0)


def test_sixteen_bit_grey_png(tmp_path):
    grey = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(grey).save(path)
    image = load_image(path, size=0)
    np.testing.assert_allclose(image[..., 0], grey / 65535, atol=1e-4)
    np.testing.assert_array_equal(image[..., 3], 1.0)


def test_exif_orientation_is_applied(tmp_path, rng):
    rgb = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    picture = Image.fromarray(rgb)
    exif = picture.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "photo.png"
    picture.save(path, exif=exif)
    assert load_image(path, size=0).shape == (6, 4, 4)


def test_off_lattice_copies_keep_their_mass(key, rng):
    sequence = np.asarray(embed(rng.uniform(size=(2, 6, 6, 4)).astype(np.float32), 5))
    copies = np.asarray(augmented_copies(sequence, 4, key=key, rotation="any", max_shift=2))
    for copy in copies[1:]:
        assert not np.allclose(copy, sequence)
        # bilinear rotation inside the padding conserves the total roughly
        np.testing.assert_allclose(copy.sum(axis=(1, 2)), sequence.sum(axis=(1, 2)), rtol=0.05)
        np.testing.assert_allclose(
            copy[0].sum(), copy[1].sum() * sequence[0].sum() / sequence[1].sum(), rtol=0.05
        )


def test_folders_pipes_and_decompression_bombs_are_refused(tmp_path, monkeypatch):
    import os

    from PIL import Image

    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match="is a folder, not an image file"):
        load_image(tmp_path / "folder.png")
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ValueError, match="not a regular file"):
        load_image(tmp_path / "pipe.png")
    # Pillow refuses images over twice its pixel limit; lower the limit instead of writing
    # a real 30000 x 30000 bomb
    Image.new("RGB", (40, 40)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(ValueError, match="too large an image to read safely"):
        load_image(tmp_path / "bomb.png")
