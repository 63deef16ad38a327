"""The experiment across the zoo (stnca.experiments.zoo, `stnca analyse zoo-experiment`)."""

import json

from typer.testing import CliRunner

from stnca.cli import app
from stnca.data.systems import SYSTEMS
from stnca.experiments.zoo import TRUE_TERMS, unseen_families, zoo_config, zoo_experiment


def test_the_recipe_is_valid_for_every_system_and_tests_unseen_families():
    for name in SYSTEMS:
        config = zoo_config(name, epochs=8)
        assert config.data.system == name and config.horizon() == 16 * 16
        trained = config.data.initial_condition or SYSTEMS[name].initial_condition
        assert trained not in unseen_families(name) and "uniform" not in unseen_families(name)
        assert name in TRUE_TERMS


def test_one_system_end_to_end_and_reused(tmp_path):
    report = zoo_experiment(tmp_path, ["allen_cahn"], size=8, epochs=1, extract=False, log=print)
    entry = report["systems"]["allen_cahn"]
    assert set(entry["scores"]["2x"]) == {"nca", "persistence", "spatial_mean"}
    assert set(entry["scores"]["families"]) == set(unseen_families("allen_cahn"))
    assert all("homogeneous" in row for row in entry["scores"]["families"].values())
    assert json.loads((tmp_path / "zoo.json").read_text())["systems"]["allen_cahn"]
    assert "| allen_cahn |" in (tmp_path / "zoo.md").read_text()
    assert (tmp_path / "zoo.png").stat().st_size > 0
    trained = (tmp_path / "allen_cahn" / "model.eqx").stat().st_mtime_ns
    zoo_experiment(tmp_path, ["allen_cahn"], size=8, epochs=1, extract=False, log=print)
    assert (tmp_path / "allen_cahn" / "model.eqx").stat().st_mtime_ns == trained  # reused


def test_the_command_refuses_bad_input_and_writes_nothing(tmp_path):
    runner = CliRunner()
    for arguments, message in [
        (["--systems", "no_such"], "unknown system 'no_such'"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--size", "4"], "--size must be at least 8"),
    ]:
        out = tmp_path / "zoo"
        result = runner.invoke(app, ["analyse", "zoo-experiment", "--out", str(out), *arguments])
        assert result.exit_code == 2, (arguments, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1
        assert not out.exists()


def test_an_untrained_rule_scores_as_persistence_and_the_mean_scores_one():
    import jax
    import numpy as np

    from stnca import NCA
    from stnca.experiments.zoo import zoo_scores

    # an untrained NCA (output layer zero) leaves its state unchanged: it is persistence
    scores = zoo_scores(NCA(2, 1, key=jax.random.key(0)), "brusselator", 16)
    for row in scores["families"].values():
        assert not row["homogeneous"]  # the Brusselator's Turing patterns stay
        for horizon in ("1x", "2x"):
            assert row[horizon]["nca"] == row[horizon]["persistence"]
            np.testing.assert_allclose(row[horizon]["spatial_mean"], 1.0, atol=1e-3)
    assert scores["2x"]["nca"] == scores["2x"]["persistence"]
