"""An overwrite never loses the run it replaces (issue: hardening, second round): the old
run's files wait in ``.replaced/`` until the new run's first checkpoint, and come back when
the new run is interrupted, fails or is killed before then."""

from pathlib import Path

import pytest

from stnca.train import load_config, session, train
from stnca.train.run_folder import REPLACED_FOLDER, RUN_FILES, start_fresh

QUIET = dict(progress=False, log=lambda _: None)


def run_files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in RUN_FILES if (out / name).exists()}


@pytest.fixture
def finished(tmp_path, trained_run):
    """A finished run (a copy of the suite's tiny trained run) and its config."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    return out, load_config(out / "config.toml")


def interrupt_when(monkeypatch, calls: int) -> None:
    """Ctrl-C at the ``calls``-th call of the epoch function (0: when it is built)."""
    real = session.shared_epoch

    def shared_epoch(*args):
        if calls == 0:
            raise KeyboardInterrupt
        epoch, count = real(*args), [0]

        def interrupted(*inner):
            count[0] += 1
            if count[0] == calls:
                raise KeyboardInterrupt
            return epoch(*inner)

        return interrupted

    monkeypatch.setattr("stnca.train.session.shared_epoch", shared_epoch)


@pytest.mark.parametrize("calls", [0, 1], ids=["while-compiling", "in-the-first-epoch"])
def test_an_interrupted_overwrite_keeps_the_old_run(finished, monkeypatch, calls):
    out, config = finished
    before = run_files(out)
    interrupt_when(monkeypatch, calls)
    messages = []
    with pytest.raises(KeyboardInterrupt):
        train(config, out, overwrite=True, progress=False, log=messages.append)
    assert run_files(out) == before  # every file, byte for byte
    assert not (out / REPLACED_FOLDER).exists()
    assert "overwritten run is back" in messages[-1]


def test_an_overwrite_killed_before_its_checkpoint_is_undone_by_the_next_run(finished):
    out, config = finished
    before = run_files(out)
    start_fresh(out)  # what a killed overwrite leaves: the old run set aside ...
    (out / "config.toml").write_text("half a config")  # ... and the new run's first files
    # the old model is still in place and loads (a kill never leaves the folder without one)
    assert (out / "model.eqx").read_bytes() == before["model.eqx"]
    assert not (out / "checkpoint.eqx").exists()
    with pytest.raises(ValueError, match="already holds a training run"):
        train(config, out, **QUIET)  # without --overwrite: refused, the old run back
    assert run_files(out) == before and not (out / REPLACED_FOLDER).exists()


def test_a_finished_overwrite_leaves_only_the_new_run(finished):
    out, config = finished
    before = run_files(out)
    train(config.replace("training", epochs=2, checkpoint_every=1), out, overwrite=True, **QUIET)
    assert not (out / REPLACED_FOLDER).exists()
    assert run_files(out)["model.eqx"] != before["model.eqx"]
    assert "epochs = 2" in (out / "config.toml").read_text()
