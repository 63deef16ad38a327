import io
import math
import struct
import sys
from collections import defaultdict

import numpy as np
import pytest
from helpers import tiny_config
from PIL import Image
from typer.testing import CliRunner

from stnca.cli import app
from stnca.train import config_from_dict, load_config, read_metrics, train
from stnca.train.config import ImageData

Event = pytest.importorskip("tensorboardX.proto.event_pb2").Event
masked_crc32c = pytest.importorskip("tensorboardX.record_writer").masked_crc32c

SCALAR_COLUMNS = {
    "loss/train": "loss",
    "loss/reinitialised": "reinitialised_loss",
    "loss/rollout": "rollout_loss",
    "gradient_norm": "gradient_norm",
    "learning_rate": "learning_rate",
}


def read_records(path):
    """The payloads of a TFRecord file: 8-byte length, its crc, payload, the payload's crc."""
    data = path.read_bytes()
    records, i = [], 0
    while i < len(data):
        header = data[i : i + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[i + 8 : i + 12])
        payload = data[i + 12 : i + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[i + 12 + length : i + 16 + length])
        assert header_crc == masked_crc32c(header) and payload_crc == masked_crc32c(payload)
        records.append(payload)
        i += 16 + length
    assert i == len(data)
    return records


def read_events(folder):
    """Per event file (in the viewer's order): scalars {tag: [(step, value)]}, image steps,
    the images, and the step of the file's purge (SessionLog START) event, if any."""
    files = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        scalars, images, purge = defaultdict(list), defaultdict(list), None
        for payload in read_records(path):
            event = Event.FromString(payload)
            if event.HasField("session_log"):
                purge = event.step
            for value in event.summary.value:
                if value.HasField("image"):
                    images[value.tag].append((event.step, value.image))
                else:
                    scalars[value.tag].append((event.step, value.simple_value))
        files.append({"scalars": scalars, "images": images, "purge": purge})
    return files


def expected_scalars(rows):
    return {
        tag: [(r["epoch"], r[column]) for r in rows if not math.isnan(r[column])]
        for tag, column in SCALAR_COLUMNS.items()
    }


def assert_scalars_match(scalars, rows):
    expected = expected_scalars(rows)
    assert set(scalars) == set(expected)
    for tag, values in expected.items():
        assert [s for s, _ in scalars[tag]] == [s for s, _ in values], tag
        np.testing.assert_allclose(
            [v for _, v in scalars[tag]], [v for _, v in values], rtol=1e-6, err_msg=tag
        )


def tensorboard_config(tmp_path, rng, **training):
    settings = {"epochs": 3, "tensorboard": True, "tensorboard_every": 2, "validate_every": 2}
    return tiny_config(tmp_path, rng, **{**settings, **training})


def test_scalars_and_images_match_the_metrics(tmp_path, rng):
    config = tensorboard_config(tmp_path, rng)
    out = tmp_path / "run"
    train(config, out, progress=False, log=lambda _: None)
    (events,) = read_events(out / "tensorboard")
    rows = read_metrics(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert_scalars_match(events["scalars"], rows)
    # every epoch's losses; the rollout loss where it was computed (row 0 and epoch 2)
    assert [s for s, _ in events["scalars"]["loss/train"]] == [0, 1, 2, 3]
    assert [s for s, _ in events["scalars"]["gradient_norm"]] == [1, 2, 3]
    assert [s for s, _ in events["scalars"]["loss/rollout"]] == [0, 2]
    # an image at 0, every tensorboard_every epochs and at the end
    assert list(events["images"]) == ["prediction"]
    assert [s for s, _ in events["images"]["prediction"]] == [0, 2, 3]
    for _, image in events["images"]["prediction"]:
        pixels = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)))
        assert pixels.shape == (image.height, image.width, 3)
        # rows truth / NCA / |difference| of 6 frames of 12 x 12 cells, magnified 6 times
        assert image.height == 3 * 72 + 2 * 2 and image.width == 6 * 72 + 5 * 2
    # the untrained NCA leaves frame 0 as it is: its row shows the first frame throughout
    _, first = events["images"]["prediction"][0]
    pixels = np.asarray(Image.open(io.BytesIO(first.encoded_image_string)))
    nca = pixels[74:146]
    np.testing.assert_array_equal(nca[:, 74:146], nca[:, :72])
    assert load_config(out / "config.toml").training.tensorboard


def test_without_reinitialised_trajectories_that_curve_is_left_out(tmp_path, rng):
    config = tensorboard_config(tmp_path, rng, reinitialised_batches=0, select_by="loss")
    out = tmp_path / "run"
    train(config, out, progress=False, log=lambda _: None)
    (events,) = read_events(out / "tensorboard")
    assert set(events["scalars"]) == {"loss/train", "gradient_norm", "learning_rate"}


def test_resume_appends_and_continues_the_steps(tmp_path, rng):
    config = tensorboard_config(tmp_path, rng, checkpoint_every=1)
    out = tmp_path / "run"
    train(config, out, epochs=2, progress=False, log=lambda _: None)
    train(config, out, epochs=4, resume=True, progress=False, log=lambda _: None)
    first, second = read_events(out / "tensorboard")
    assert first["purge"] == 0 and second["purge"] == 3  # the viewer drops steps >= 3 before
    assert [s for s, _ in first["scalars"]["loss/train"]] == [0, 1, 2]
    assert [s for s, _ in second["scalars"]["loss/train"]] == [3, 4]
    assert [s for s, _ in first["images"]["prediction"]] == [0, 2]
    assert [s for s, _ in second["images"]["prediction"]] == [4]
    merged = defaultdict(list)
    for events in (first, second):
        for tag, values in events["scalars"].items():
            merged[tag] += values
    assert_scalars_match(merged, read_metrics(out / "metrics.csv"))


def test_tensorboard_can_be_switched_on_at_a_resume(tmp_path, rng):
    """A display setting: changing it on --resume is allowed and changes nothing trained."""
    plain = tensorboard_config(tmp_path, rng, checkpoint_every=1, tensorboard=False)
    train(plain, tmp_path / "a", epochs=4, progress=False, log=lambda _: None)
    train(plain, tmp_path / "b", epochs=2, progress=False, log=lambda _: None)
    watched = plain.replace("training", tensorboard=True)
    train(watched, tmp_path / "b", epochs=4, resume=True, progress=False, log=lambda _: None)
    (events,) = read_events(tmp_path / "b" / "tensorboard")
    assert [s for s, _ in events["scalars"]["loss/train"]] == [3, 4]
    assert load_config(tmp_path / "b" / "config.toml").training.tensorboard
    assert (tmp_path / "a" / "model.eqx").read_bytes() == (
        tmp_path / "b" / "model.eqx"
    ).read_bytes()
    train(watched, tmp_path / "b", epochs=1, overwrite=True, progress=False, log=lambda _: None)
    (events,) = read_events(tmp_path / "b" / "tensorboard")  # the old run's events are gone
    assert [s for s, _ in events["scalars"]["loss/train"]] == [0, 1]
    other = plain.replace("training", learning_rate=0.5)
    with pytest.raises(ValueError, match="only training.epochs, training.tensorboard"):
        train(other, tmp_path / "b", epochs=5, resume=True, progress=False, log=lambda _: None)


def test_cli_flag_writes_event_files(tmp_path, config_file):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", str(config_file), "--tensorboard", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    (events,) = read_events(out / "tensorboard")
    assert [s for s, _ in events["scalars"]["loss/train"]] == [0, 1, 2, 3, 4]
    assert [s for s, _ in events["images"]["prediction"]] == [0, 4]  # every 100, and the end
    assert load_config(out / "config.toml").training.tensorboard


def test_cli_flag_with_images_sets_the_config(tmp_path, monkeypatch):
    """``--images --tensorboard`` hands train an image config with tensorboard on."""
    import stnca.train

    class Called(Exception):
        pass

    def fake_train(config, *args, **kwargs):
        raise Called(config)

    monkeypatch.setattr(stnca.train, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["train", "--images", "emoji:microbe", "emoji:rooster", "--tensorboard"]
    )
    assert isinstance(result.exception, Called), result.output
    (config,) = result.exception.args
    assert isinstance(config.data, ImageData) and config.training.tensorboard


def test_missing_tensorboardx_fails_first_in_one_line(tmp_path, config_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX fails
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", str(config_file), "--tensorboard", "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        'error: training.tensorboard needs tensorboardX: pip install "stnca[tensorboard]"'
    )
    assert not out.exists()
    config = load_config(config_file).replace("training", tensorboard=True)
    with pytest.raises(ValueError, match=r"needs tensorboardX: pip install"):
        train(config, out, progress=False, log=lambda _: None)
    assert not out.exists()


@pytest.mark.parametrize("every", [0, -1])
def test_tensorboard_every_must_be_positive(every):
    with pytest.raises(ValueError, match=f"training.tensorboard_every must be >= 1, got {every}"):
        config_from_dict({"training": {"tensorboard": True, "tensorboard_every": every}})


def test_settings_round_trip_through_toml(tmp_path):
    config = config_from_dict({"training": {"tensorboard": True, "tensorboard_every": 7}})
    text = config.to_toml()
    assert "tensorboard = true" in text and "tensorboard_every = 7" in text
    (tmp_path / "c.toml").write_text(text)
    again = load_config(tmp_path / "c.toml")
    assert again.training.tensorboard and again.training.tensorboard_every == 7
    assert not config_from_dict({}).training.tensorboard
