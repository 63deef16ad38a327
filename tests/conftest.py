"""Keep JAX strict in tests, compile quickly, share compiled programs, and hand out keys.

Most of the suite's time is XLA compiling tiny programs that then run for milliseconds, so
the tests ask LLVM for no optimisation (``--xla_backend_optimization_level=0``, set here
for this process, the pytest-xdist workers and every subprocess a test starts). Measured
on 2 cores, one process: ``tests/test_train.py`` took 119 s at level 0, 169 s at level 1
and 217 s at the default; the demo's end-to-end test, the one test that runs large
programs, 37 s at level 0 against 25-27 s (a cost the compile-bound majority repays many
times). XLA CPU's older (non-"fusion emitter") code generator compiles these small programs
about twice as fast again (``--xla_cpu_use_fusion_emitters=false``: ``tests/test_train.py``
on two workers 93 s -> 60 s) and runs the training step within 10% of the new one
(BENCHMARKS.md). XLA splits each program's LLVM module into parts compiled in parallel,
which for programs this small costs more than it saves; one part
(``--xla_cpu_parallel_codegen_split_count=1``): the whole suite on two workers 188 -> 171 s,
its CPU 358 -> 326 s (the same hour, one after the other). The programs compute the same
functions up to float rounding (no fast-math either way; the tests' bit-for-bit comparisons
compare two runs under the same setting).

JAX's persistent compilation cache, pointed at one temporary folder for the whole run,
shares the programs that take 0.1 s or more to compile between the pytest-xdist workers,
the tests and the commands' subprocesses: the controller process makes the
folder before the workers start, and the workers and every subprocess inherit it through
the environment (``JAX_COMPILATION_CACHE_DIR``). Reads and writes of the cache are under a
file lock (``jax_compilation_cache_max_size`` turns it on), so that two workers never see a
half-written entry. Caching every tiny program (threshold 0) cost more than it saved:
writing thousands of entries made the suite take 183 and 188 s against 149 s at JAX's
default threshold (1 s) and 151 s with no cache (2 cores, the same day). Between the two,
0.1 s catches the training epochs (0.2-0.6 s to compile each, and the same tiny configs
are trained again by many tests: resumed, sharded, seeded) and few else: in the
training, seeds, sweep and morphing tests a compile-time probe counted 65 programs of
0.1 s or more among 676 compilations, and those tests took 61 / 63 s
against 73 / 65 s at the default threshold (CPU 114 / 117 s against 138 / 123 s), two
alternating runs. A cached program is the same executable the compiler would give, so no
test result depends on the cache.

Figures are saved at 40 dots per inch instead of 100 (``stnca.viz.FIGURE_DPI``): the same
drawing code, a sixth of the pixels. A probe of the whole suite counted 295 saved figures
taking 36 s of the workers' CPU (a tenth of it); a typical 3 x 6 panel figure takes 125 ms
at 40 dpi against 181 ms at 100 (``bbox_inches="tight"`` draws each figure twice, once to
measure it). No test reads a figure's resolution.
"""

import os
import shutil
import tempfile

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # the controller (or a plain run)
    _CACHE = tempfile.mkdtemp(prefix="stnca-test-jax-cache-")
    os.environ.update(
        JAX_COMPILATION_CACHE_DIR=_CACHE,
        JAX_COMPILATION_CACHE_MAX_SIZE=str(4 * 2**30),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.1",
    )
else:
    _CACHE = None
for _flag in (
    "xla_backend_optimization_level=0",
    "xla_cpu_use_fusion_emitters=false",
    "xla_cpu_parallel_codegen_split_count=1",
):
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --{_flag}".strip()

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    """JAX strict and figures small in every process that runs tests. The pytest-xdist
    controller runs none (it hands them out), so it does not import JAX and stnca: that
    took 2-3 s before the workers could start. (At the session's start, after pytest-cov
    has started measuring: stnca's module-level lines run here and count as covered.)"""
    config = session.config
    if getattr(config, "workerinput", None) is None and config.getoption("numprocesses", None):
        return
    import jax  # after the cache settings above, which JAX reads when it starts

    from stnca import viz

    jax.config.update("jax_numpy_rank_promotion", "raise")
    viz.FIGURE_DPI = 40  # the same drawing code at a sixth of the pixels (module docstring)


def pytest_unconfigure(config):
    if _CACHE is not None:  # the process that made the folder removes it
        shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_folder(tmp_path_factory, worker_id):
    """A folder every pytest-xdist worker of this run sees (the run's base temporary folder)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def diffusion_config(folder, rng):
    """A tiny training config (a diffusing field from a file, 4 epochs) in ``folder``."""
    from helpers import diffusion_data

    diffusion_data(folder / "d.npy", rng, size=10, frames=4, steps=2)
    path = folder / "c.toml"
    path.write_text(
        "[model]\nhidden_channels = 1\n"
        '[data]\nsource = "file"\npath = "d.npy"\n'
        "[training]\nepochs = 4\nsteps_between_frames = 2\ncheckpoint_every = 2\n"
    )
    return path


@pytest.fixture(scope="session")
def trained_run(shared_folder):
    """The run folder of ``stnca train`` on ``diffusion_config`` (4 epochs), trained once for
    the whole run; tests that use it take a copy (``trained`` in test_cli_train)."""
    from helpers import made_once
    from typer.testing import CliRunner

    from stnca.cli import app

    def make(folder):
        folder.mkdir(parents=True)
        config = diffusion_config(folder, np.random.default_rng(1234))
        result = CliRunner().invoke(app, ["train", str(config), "--out", str(folder / "run")])
        assert result.exit_code == 0, result.output

    return made_once(shared_folder, "trained-run", make) / "run"


@pytest.fixture
def key():
    import jax

    return jax.random.key(1234)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def config_file(tmp_path, rng):
    """A tiny training config (a diffusing field from a file, 4 epochs) for CLI tests."""
    return diffusion_config(tmp_path, rng)
