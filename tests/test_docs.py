"""The documentation site: the tutorial scripts run, the site builds in strict mode, and
the generated parts (CLI usage, configuration reference) are there and cannot drift."""

import dataclasses
import html
import importlib.util
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = DOCS / "tutorials"


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _load_hooks():
    spec = importlib.util.spec_from_file_location("stnca_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(path: Path) -> str:
    """A built page as plain text (tags removed: highlighted code is split into spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def _run(args: list[str], cwd: Path, timeout: float, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1", **env}
    result = subprocess.run(
        args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


# --- the tutorials, at toy sizes -------------------------------------------------------------

TUTORIAL_OUTPUTS = {
    "gray_scott.py": ["run/model.eqx", "test.npy", "evaluation/evaluation.json"],
    "morph_images.py": ["disc.png", "shapes/model.eqx", "shapes/morph.json", "web/shapes.html"],
    "tiff_timelapse.py": [
        "movie_0.tif",
        "movies.npy",
        "run/model.eqx",
        "evaluation/evaluation.json",
    ],
    "python_api.py": [
        "movies.npy",
        "run/model.eqx",
        "rollout.npy",
        "evaluation/evaluation.json",
        "equation/equation.json",
    ],
    "analyse_model.py": [
        "perturb/perturb.json",
        "adversarial/adversarial.json",
        "symmetry/symmetry.json",
        "web/emoji_morph_cpu.html",
    ],
}
NEEDS = {
    "python_api.py": pytest.mark.skipif(
        not (_has("tifffile") and _has("pysindy")),
        reason="needs tifffile (the io extra) and PySINDy (the extract extra)",
    ),
    "tiff_timelapse.py": pytest.mark.skipif(
        not (_has("stnca.data.importers") and _has("tifffile")),
        reason="needs stnca import (stnca.data.importers) and tifffile (the io extra)",
    ),
}


@pytest.mark.parametrize(
    "script",
    [pytest.param(name, marks=NEEDS.get(name, ())) for name in TUTORIAL_OUTPUTS],
)
def test_tutorial_runs_at_toy_size(script, tmp_path, monkeypatch):
    """Each tutorial script runs end to end (STNCA_TUTORIAL_TINY=1) and writes its files. It
    runs as ``python SCRIPT FOLDER`` would run it, in this process (``runpy``, as
    ``__main__``): a subprocess would pay the 4-5 s import of JAX again for each script."""
    out = tmp_path / "work"
    monkeypatch.setenv("STNCA_TUTORIAL_TINY", "1")
    monkeypatch.setattr(sys, "argv", [str(TUTORIALS / script), str(out)])
    monkeypatch.chdir(tmp_path)  # the scripts change directory; restored afterwards
    runpy.run_path(str(TUTORIALS / script), run_name="__main__")
    for name in TUTORIAL_OUTPUTS[script]:
        assert (out / name).is_file(), f"{script} did not write {name}"


def test_every_tutorial_is_tested_and_on_a_page():
    scripts = {p.name for p in TUTORIALS.glob("*.py")}
    assert scripts == set(TUTORIAL_OUTPUTS)
    pages = "".join(p.read_text(encoding="utf-8") for p in TUTORIALS.glob("*.md"))
    for script in scripts:  # the whole script, in a snippets block
        included = re.search(rf"--8<--\s+docs/tutorials/{re.escape(script)}\s+--8<--", pages)
        assert included, f"no page includes {script}"


# --- the hooks ---------------------------------------------------------------------------------


def test_cli_help_is_plain_text_at_a_fixed_width():
    hooks = _load_hooks()
    text = hooks.cli_help(["train"])
    assert text.startswith("Usage: stnca train")
    assert "--epochs" in text and "\x1b[" not in text and "╭" not in text
    assert max(len(line) for line in text.splitlines()) <= hooks.WIDTH
    assert hooks.cli_help(["analyse", "perturb"]).startswith("Usage: stnca analyse perturb")
    assert hooks.cli_help(["no-such-command"]) is None
    assert hooks.cli_help(["train", "deeper"]) is None


def _page(markdown: str, hooks, strict: bool) -> str:
    page = SimpleNamespace(file=SimpleNamespace(src_uri="cli/x.md"))
    return hooks.on_page_markdown(markdown, page, {"strict": strict}, None)


def test_a_page_naming_a_missing_command_fails_only_a_strict_build():
    from mkdocs.exceptions import PluginError

    hooks = _load_hooks()
    with pytest.raises(PluginError, match="stnca no-such-command"):
        _page("<!-- cli: no-such-command -->", hooks, strict=True)
    assert "Not available" in _page("<!-- cli: no-such-command -->", hooks, strict=False)
    assert "Usage: stnca demo" in _page("<!-- cli: demo -->", hooks, strict=True)


@dataclasses.dataclass(frozen=True)
class _Documented:
    size: int = 3
    """Cells per side. Range: >= 3."""
    names: tuple[str, ...] = ("a", "b")
    """Names, ``a`` or ``b``."""
    width: float | None = None
    """Optional width."""


@dataclasses.dataclass(frozen=True)
class _Undocumented:
    size: int = 3
    """Cells per side."""
    forgotten: bool = False


def test_config_table_has_type_default_and_meaning():
    hooks = _load_hooks()
    table = hooks.config_table(_Documented)
    assert "| `size` | integer | `3` | Cells per side. Range: >= 3. |" in table
    assert '| `names` | list of strings | `["a", "b"]` | Names, `a` or `b`. |' in table
    assert "| `width` | number (optional) | unset |" in table


def test_a_config_field_without_docstring_fails_the_build():
    from mkdocs.exceptions import PluginError

    hooks = _load_hooks()
    with pytest.raises(PluginError, match="forgotten"):
        hooks.config_table(_Undocumented)


def test_every_config_field_is_documented():
    hooks = _load_hooks()
    for name, cls in hooks.config_sections().items():
        docs = hooks.field_docstrings(cls)
        for field in dataclasses.fields(cls):
            assert docs.get(field.name, "").strip(), f"[{name}] {field.name} has no docstring"


def test_the_configuration_page_must_cover_every_section():
    from mkdocs.exceptions import PluginError

    hooks = _load_hooks()
    with pytest.raises(PluginError, match="data.images"):
        _page("<!-- config: model -->\n<!-- config: training -->", hooks, strict=True)


# --- the site ----------------------------------------------------------------------------------


def test_mkdocs_build_strict(tmp_path):
    """The whole site builds with warnings as errors, offline, and has the generated parts."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pytest.importorskip("material", reason="the docs extra is not installed")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")
    site = tmp_path / "site"
    _run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], ROOT, 300)

    for page in (
        "index.html",
        "getting-started/index.html",
        "configuration/index.html",
        "api/index.html",
        "tutorials/gray-scott/index.html",
        *(f"cli/{name}/index.html" for name in ("simulate", "train", "import", "analyse")),
    ):
        assert (site / page).is_file(), page
    assert (site / "figures" / "demo_cpu.png").is_file()

    getting_started = _text(site / "getting-started" / "index.html")
    assert ".venv/bin/pip install -e . && .venv/bin/stnca demo" in getting_started
    assert '.venv/bin/pip install -e ".[dev]" && .venv/bin/pytest -q' in getting_started

    config = (site / "configuration" / "index.html").read_text(encoding="utf-8")
    cells = r"<code>steps_between_frames</code></td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>"
    row = re.search(cells, config)
    assert row is not None, "steps_between_frames is not in the configuration reference"
    assert row.group(1) == "integer" and row.group(2) == "<code>32</code>"
    for key in ("hidden_channels", "initial_condition", "validation_trajectories", "hold_final"):
        assert f"<code>{key}</code>" in config

    train = _text(site / "cli" / "train" / "index.html")
    assert "Usage: stnca train" in train and "--epochs <int>" in train

    tutorial = _text(site / "tutorials" / "gray-scott" / "index.html")
    assert "EPOCHS = 400" in tutorial and "--8<--" not in tutorial  # snippets were included
