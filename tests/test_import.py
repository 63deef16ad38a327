"""`stnca import` and `stnca.data.importers`: each format written by its own library."""

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from stnca.cli import app
from stnca.data.importers import Selection, read_source, read_sources, resize_frames

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def imported(tmp_path, *args):
    out = tmp_path / "out.npy"
    result = invoke("import", *args, "--out", out, "--overwrite")  # one file, many imports
    assert result.exit_code == 0, result.output
    assert result.output.startswith("read ")  # what was read comes first
    return np.load(out)


def refused(tmp_path, *args, message):
    """A one-line error naming the problem, exit code 2, nothing written."""
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke("import", *args, "--out", tmp_path / "refused.npy")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    return lines[0]


@pytest.fixture
def data(rng):
    return rng.uniform(size=(6, 2, 10, 12)).astype(np.float32)  # T, C, Y, X


def test_tiff_stack_with_tcyx_axes(tmp_path, data):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    y = imported(tmp_path, path)
    np.testing.assert_array_equal(y, np.moveaxis(data, 1, -1))  # (T, Y, X, C)


def test_ome_tiff_z_stack_needs_a_slice(tmp_path, rng):
    stack = rng.uniform(size=(5, 3, 2, 10, 12)).astype(np.float32)  # T, Z, C, Y, X
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, stack, ome=True, metadata={"axes": "TZCYX"})
    line = refused(tmp_path, path, message="Z-stack")
    assert "cells.ome.tif" in line and "choose one slice with z = K" in line
    np.testing.assert_array_equal(
        imported(tmp_path, path, "--z", 1), np.moveaxis(stack[:, 1], 1, -1)
    )
    refused(tmp_path, path, "--z", 3, message="outside its 3 Z slices")
    refused(tmp_path, path, "--z", -1, message="outside its 3 Z slices (0 to 2)")  # not the last


def test_a_z_stack_imports_as_a_volume_and_trains_a_3d_nca(tmp_path, rng):
    from stnca.train import config_from_dict, train

    stack = rng.uniform(size=(4, 5, 2, 6, 7)).astype(np.float32)  # T, Z, C, Y, X
    path = tmp_path / "embryo.ome.tif"
    tifffile.imwrite(path, stack, ome=True, metadata={"axes": "TZCYX"})
    volume = imported(tmp_path, path, "--volume", "--png")
    np.testing.assert_array_equal(volume, np.moveaxis(stack, 2, -1))  # (T, Z, Y, X, C)
    assert (tmp_path / "out.png").stat().st_size > 0
    assert read_source(path, Selection(volume=True)).describe().count("(R, T, Z, H, W, C)") == 1
    refused(tmp_path, path, "--volume", "--z", 1, message="either z (one slice) or volume")
    refused(tmp_path, path, "--volume", "--resize", 4, message="cannot resize volumes")
    flat = tmp_path / "plane.tif"
    tifffile.imwrite(flat, stack[:, 0], imagej=True, metadata={"axes": "TCYX"})
    refused(tmp_path, flat, "--volume", message="no Z axis (axes TCYX) to read as a volume")
    config = config_from_dict(
        {
            "model": {"hidden_channels": 1, "dimensions": 3},
            "data": {"source": "file", "path": "out.npy"},
            "training": {"epochs": 1, "steps_between_frames": 2},
        },
        base_dir=tmp_path,
    )
    assert train(config, tmp_path / "run", progress=False, log=print).data.shape == (
        1,
        4,
        5,
        6,
        7,
        2,
    )


def test_tiff_axes_that_do_not_fit_its_shape_are_named(tmp_path, rng):
    path = tmp_path / "plane.tif"
    tifffile.imwrite(path, rng.uniform(size=(16, 16)).astype(np.float32))  # one 2-D image
    refused(tmp_path, path, "--axes", "TYX", message="axes TYX do not match the shape (16, 16)")


def test_tiff_without_axes_metadata_reads_time_first(tmp_path, rng):
    stack = rng.uniform(size=(4, 9, 7)).astype(np.float32)
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")  # a grey stack, as microscopes write
    np.testing.assert_array_equal(imported(tmp_path, path), stack[..., None])


@pytest.fixture
def well(tmp_path, rng):
    """An HDF5 file in The Well's layout: t0_fields/<name> of (trajectories, time, x, y)."""
    fields = {n: rng.uniform(size=(3, 7, 16, 16)).astype(np.float32) for n in ("A", "B")}
    path = tmp_path / "gray_scott.hdf5"
    with h5py.File(path, "w") as handle:
        for name, values in fields.items():
            handle[f"t0_fields/{name}"] = values
        handle.create_group("t1_fields")
        handle["dimensions/time"] = np.arange(7.0)
        handle["scalars/F"] = 0.0623
    return path, fields


def test_hdf5_in_the_wells_layout(tmp_path, well):
    path, fields = well
    both = np.stack([fields["A"], fields["B"]], axis=-1)
    np.testing.assert_array_equal(imported(tmp_path, f"{path}:/t0_fields"), both)
    np.testing.assert_array_equal(imported(tmp_path, path), both)  # t0_fields by default
    swapped = imported(tmp_path, f"{path}:/t0_fields", "--channels", "B,A", "--trajectories", "1:2")
    np.testing.assert_array_equal(swapped, both[1, ..., ::-1])  # one trajectory: (T, H, W, C)
    one = imported(tmp_path, f"{path}:/t0_fields/B", "--every", 3)
    np.testing.assert_array_equal(one, fields["B"][:, ::3, ..., None])


def test_hdf5_bad_paths(tmp_path, well):
    path, _ = well
    line = refused(tmp_path, f"{path}:/t0_fields/C", message="no dataset or group /t0_fields/C")
    assert "/t0_fields/A" in line  # names what there is
    refused(tmp_path, f"{path}:/t0_fields", "--channels", "A,Q", message="no field Q")
    refused(tmp_path, f"{path}:/dimensions/time", message="1-D array")
    import h5py

    with h5py.File(path, "a") as handle:
        handle["dangling"] = h5py.SoftLink("/nowhere")
    refused(tmp_path, f"{path}:/dangling", message="/dangling is a broken link")


def test_videos_written_by_imageio(tmp_path, rng):
    frames = (rng.uniform(size=(5, 16, 16, 3)) * 255).astype(np.uint8)
    gif = tmp_path / "movie.gif"
    iio.imwrite(gif, frames[..., 0])  # grey frames: a GIF's palette holds them exactly
    decoded = iio.imread(gif)
    y = imported(tmp_path, gif)
    assert y.shape == (5, 16, 16, decoded.shape[-1])
    np.testing.assert_array_equal(y[..., 0], frames[..., 0] / np.float32(255))
    grey = imported(tmp_path, gif, "--channels", "grey", "--every", 2)
    np.testing.assert_allclose(grey[..., 0], frames[::2, ..., 0] / 255, atol=1e-6)

    mp4 = tmp_path / "movie.mp4"
    iio.imwrite(mp4, frames, fps=5)
    y = imported(tmp_path, mp4, "--frames", "1:4")
    # lossy codec: exactly what the decoder gives, in order
    np.testing.assert_array_equal(y, iio.imread(mp4)[1:4] / np.float32(255))


def test_folder_of_pngs_in_natural_order(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(1, 13):  # 1..12: a plain sort would put 10, 11, 12 before 2
        Image.fromarray(np.full((8, 9), 10 * i, np.uint8)).save(folder / f"{i}.png")
    y = imported(tmp_path, folder)
    assert y.shape == (12, 8, 9, 1)
    np.testing.assert_array_equal(
        y[:, 0, 0, 0], (np.arange(1, 13) * 10 / np.float32(255)).astype(np.float32)
    )


def test_npz_named_arrays(tmp_path, rng):
    u, v = rng.uniform(size=(2, 5, 8, 8))
    path = tmp_path / "fields.npz"
    np.savez(path, u=u, v=v)
    np.testing.assert_array_equal(imported(tmp_path, path), np.stack([u, v], -1).astype(np.float32))
    np.testing.assert_array_equal(imported(tmp_path, f"{path}:v"), v[..., None].astype(np.float32))
    refused(tmp_path, f"{path}:w", message="no array 'w'")
    # a member whose header claims 40 TB: refused from the header, before any allocation
    import io
    import zipfile

    header = io.BytesIO()
    claim = {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000, 1000)}
    np.lib.format.write_array_header_1_0(header, claim)
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(forged, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("A.npy", header.getvalue() + bytes(64))
    refused(tmp_path, f"{forged}:A", message="claims shape (100000, 100000, 1000)")


def test_selection_on_a_known_array(tmp_path):
    y = np.arange(2 * 6 * 8 * 8 * 3, dtype=np.float32).reshape(2, 6, 8, 8, 3)
    path = tmp_path / "known.npy"
    np.save(path, y)
    got = read_source(path, Selection(frames=(1, 6), every=2, crop=(1, 7, 2, 6))).trajectories
    np.testing.assert_array_equal(got, y[:, 1:6:2, 1:7, 2:6])
    got = read_source(path, Selection(channels=("2", "0"), trajectories=(1, None))).trajectories
    np.testing.assert_array_equal(got, y[1:, ..., [2, 0]])
    # area averaging: each output cell is the mean of a 2x2 block
    halved = read_source(path, Selection(resize=(4, 4))).trajectories
    blocks = y.reshape(2, 6, 4, 2, 4, 2, 3).mean(axis=(3, 5))
    np.testing.assert_allclose(halved, blocks, rtol=1e-6)
    scaled = read_source(path, Selection(normalise="minmax")).trajectories
    np.testing.assert_allclose(scaled.min(axis=(0, 1, 2, 3)), 0)
    np.testing.assert_allclose(scaled.max(axis=(0, 1, 2, 3)), 1)
    assert resize_frames(np.ones((2, 5, 5, 1), np.float32), (9, 7)).shape == (2, 9, 7, 1)


def test_several_sources_make_several_trajectories(tmp_path, rng):
    a, b = rng.uniform(size=(2, 4, 6, 6, 1)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    both = imported(tmp_path, tmp_path / "a.npy", tmp_path / "b.npy")
    np.testing.assert_array_equal(both, np.stack([a, b]))
    np.save(tmp_path / "c.npy", a[:, :5])
    with pytest.raises(ValueError, match="differs from"):
        read_sources([tmp_path / "a.npy", tmp_path / "c.npy"])


def test_bad_inputs_one_line_exit_2_nothing_written(tmp_path, rng):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(rng.bytes(2000))
    refused(tmp_path, broken, message="cannot decode this video")

    uneven = tmp_path / "uneven"
    uneven.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(uneven / "1.png")
    Image.fromarray(np.zeros((8, 9), np.uint8)).save(uneven / "2.png")
    line = refused(tmp_path, uneven, message="all frames must have one size")
    assert "2.png" in line

    empty = tmp_path / "empty"
    empty.mkdir()
    refused(tmp_path, empty, message="an empty folder")

    unknown = tmp_path / "data.xyz"
    unknown.write_text("1 2 3")
    refused(tmp_path, unknown, message="data.xyz: unknown format")
    refused(tmp_path, tmp_path / "missing.tif", message="missing.tif: not found")

    single = tmp_path / "single.npy"
    np.save(single, np.zeros((1, 6, 6, 1), np.float32))
    refused(tmp_path, single, message="a trajectory needs at least 2")
    refused(tmp_path, single, "--crop", "0:2,0:6", message="at least 3x3")
    refused(tmp_path, single, "--frames", "x", message="--frames must look like a:b")


def test_output_that_is_an_input_is_refused(tmp_path, rng):
    path = tmp_path / "same.npy"
    y = rng.uniform(size=(3, 6, 6, 1)).astype(np.float32)
    np.save(path, y)
    result = invoke("import", path, "--out", path, "--every", 2)
    assert result.exit_code == 2 and "refusing to overwrite an input" in result.output
    np.testing.assert_array_equal(np.load(path), y)


def test_a_config_pointing_at_a_tiff_trains(tmp_path, rng):
    stack = rng.uniform(size=(5, 8, 8)).astype(np.float32)  # T, Y, X
    tifffile.imwrite(tmp_path / "movie.tif", stack, imagej=True, metadata={"axes": "TYX"})
    config = tmp_path / "c.toml"
    config.write_text(
        "[model]\nhidden_channels = 1\n"
        '[data]\nsource = "file"\npath = "movie.tif"\n'
        "[training]\nepochs = 2\nsteps_between_frames = 2\ncheckpoint_every = 1\n"
    )
    result = invoke("train", config, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    saved = np.load(tmp_path / "run" / "train_data.npy")
    np.testing.assert_array_equal(saved, stack[None, ..., None])
    assert (tmp_path / "run" / "model.eqx").is_file()


def test_the_well_worked_example_end_to_end(tmp_path):
    """examples/the_well at tiny settings: Well-layout HDF5 -> import -> train -> evaluate."""
    import importlib.util
    from pathlib import Path

    import jax

    from stnca.data import gray_scott
    from stnca.data.initial_conditions import initial_condition

    script = Path(__file__).parent.parent / "examples" / "the_well" / "make_data.py"
    spec = importlib.util.spec_from_file_location("make_data", script)
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    params = gray_scott.GrayScottParams()
    initial = initial_condition("smooth", 12, key=jax.random.key(0), batch=2)
    y = np.asarray(gray_scott.simulate(initial, 16, every=2, params=params))
    make_data.write_well(tmp_path / "train.hdf5", y, 2, params)
    with h5py.File(tmp_path / "train.hdf5") as handle:
        assert handle["t0_fields/A"].shape == (2, 9, 12, 12)
        np.testing.assert_array_equal(handle["dimensions/time"][:], np.arange(0, 17, 2))

    train = imported(tmp_path, f"{tmp_path / 'train.hdf5'}:/t0_fields", "--every", 2)
    np.testing.assert_array_equal(train, y[:, ::2])  # fields A, B are the channels
    config = tmp_path / "c.toml"
    config.write_text(
        "[model]\nhidden_channels = 2\n"
        '[data]\nsource = "file"\npath = "out.npy"\n'
        "[training]\nepochs = 3\nsteps_between_frames = 4\ncheckpoint_every = 1\n"
    )
    result = invoke("train", config, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    np.save(tmp_path / "test.npy", y[0, ::2])
    result = invoke(
        "evaluate",
        tmp_path / "run" / "model.eqx",
        "--truth",
        tmp_path / "test.npy",
        "--steps-between-frames",
        4,
        "--out",
        tmp_path / "evaluation",
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "evaluation" / "evaluation.json").is_file()


def test_review_cases_selection_across_sources(tmp_path, rng):
    """--normalise and --trajectories act on all sources together; a source without an R
    axis is one trajectory."""
    small, large = np.zeros((2, 3, 6, 6, 1), np.float32), np.zeros((1, 3, 6, 6, 1), np.float32)
    small[..., 0, 0, 0] = 1.0
    large[..., 0, 0, 0] = 100.0
    np.save(tmp_path / "small.npy", small)
    np.save(tmp_path / "large.npy", large)
    both = read_sources(
        [tmp_path / "small.npy", tmp_path / "large.npy"], Selection(normalise="minmax")
    ).trajectories
    np.testing.assert_allclose(both[:, 0, 0, 0, 0], [0.01, 0.01, 1.0])  # one min and max
    picked = read_sources(
        [tmp_path / "small.npy", tmp_path / "large.npy"], Selection(trajectories=(1, 3))
    ).trajectories
    np.testing.assert_array_equal(picked[:, 0, 0, 0, 0], [1.0, 100.0])
    np.save(tmp_path / "one.npy", small[0])
    with pytest.raises(ValueError, match="one trajectory"):
        read_source(tmp_path / "one.npy", Selection(trajectories=(1, 3)))


def test_review_cases_formats(tmp_path, rng):
    # a folder mixing 8- and 16-bit frames is refused (their values would not agree)
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.full((6, 6), 255, np.uint8)).save(folder / "1.png")
    Image.fromarray(np.full((6, 6), 255, np.uint16)).save(folder / "2.png")
    refused(tmp_path, folder, message="one size and colour mode")
    # a damaged .npz
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04" + rng.bytes(200))
    refused(tmp_path, damaged, message="not a readable .npz")
    # The Well's vector fields: picked by name, components named field[i]
    with h5py.File(tmp_path / "v.h5", "w") as handle:
        handle["t1_fields/velocity"] = rng.uniform(size=(2, 4, 6, 6, 2)).astype(np.float32)
    got = read_source(f"{tmp_path / 'v.h5'}:/t1_fields", Selection(channels=("velocity",)))
    assert got.trajectories.shape == (2, 4, 6, 6, 2)
    assert got.channel_names == ("velocity[0]", "velocity[1]")
    # RGB samples per channel (CYXS): merged into one channel axis, channel-major
    stack = rng.uniform(size=(2, 4, 6, 6, 3)).astype(np.float32)  # T C Y X S
    tifffile.imwrite(tmp_path / "cs.tif", stack, photometric="rgb", metadata={"axes": "TCYXS"})
    got = read_source(tmp_path / "cs.tif").trajectories
    np.testing.assert_array_equal(got[0], np.moveaxis(stack, 1, 3).reshape(2, 6, 6, 12))
    # a stack whose first axis tifffile calls samples: the message says how to place it
    tifffile.imwrite(
        tmp_path / "s.tif",
        rng.uniform(size=(3, 6, 6)).astype(np.float32),
        photometric="rgb",
        planarconfig="separate",
    )
    line = refused(tmp_path, tmp_path / "s.tif", message="no T (time) axis")
    assert "give axes T" in line
    np.testing.assert_array_equal(
        imported(tmp_path, tmp_path / "s.tif", "--axes", "TYX")[..., 0],
        tifffile.imread(tmp_path / "s.tif"),
    )
    # a frame range that keeps nothing says so
    iio.imwrite(tmp_path / "five.gif", (rng.uniform(size=(5, 8, 8)) * 255).astype(np.uint8))
    refused(tmp_path, tmp_path / "five.gif", "--frames", "4:2", message="keeps none")
