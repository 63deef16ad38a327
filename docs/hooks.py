"""MkDocs hooks: the parts of the site that are generated from the code, so they cannot drift.

- ``<!-- cli: train -->`` (``<!-- cli: analyse perturb -->``; ``<!-- cli: -->`` for
  ``stnca`` itself) becomes the command's ``--help`` text, taken from the typer app
  ``stnca.cli.app`` as plain click help at a fixed width. A page that names a command the
  app does not have fails a strict build (a plain build warns and shows a note instead).
- ``<!-- config: training -->`` (``model``, ``data.gray_scott``, ``data.file``,
  ``data.images``) becomes a table of that config section's keys: type, default and meaning.
  The meaning is the attribute docstring below each dataclass field in
  ``stnca/train/config/``; a field without one fails the build, and so does a config page
  that leaves out a section.

Registered in ``mkdocs.yml`` under ``hooks:``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import logging
import re
import types
import typing

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.plugins.stnca")

CLI_MARKER = re.compile(r"<!--\s*cli:\s*([a-z][a-z -]*?)?\s*-->")
CONFIG_MARKER = re.compile(r"<!--\s*config:\s*([a-z_.]+)\s*-->")
WIDTH = 100
"""Columns of the generated help text (fixed, so the pages do not depend on the terminal)."""


# --- the command line ----------------------------------------------------------------------


def _plain(command) -> None:
    """Switch a typer command tree to click's plain help (no rich panels or colour)."""
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain(sub)


@functools.cache
def _plain_app():
    """The app's click command tree in plain help, built once per build (building it takes
    about 70 ms, and every documented command needs it)."""
    import typer

    from stnca.cli import app

    command = typer.main.get_command(app)  # a fresh command object: changing it is harmless
    _plain(command)
    return command


def cli_help(path: list[str]) -> str | None:
    """The ``--help`` text of ``stnca PATH...`` (e.g. ``["analyse", "perturb"]``), or
    ``None`` if the app has no such command."""
    command = _plain_app()
    context = None
    names = ["stnca", *path]
    for depth, name in enumerate(names):
        if depth:
            if not hasattr(command, "get_command"):  # not a group: no subcommands
                return None
            command = command.get_command(context, name)
            if command is None:
                return None
        context = command.context_class(
            command,
            info_name=name,
            parent=context,
            terminal_width=WIDTH,
            max_content_width=WIDTH,
        )
    return command.get_help(context).rstrip()


def _cli_block(match: re.Match, page, strict: bool) -> str:
    path = (match.group(1) or "").split()
    text = cli_help(path)
    name = " ".join(["stnca", *path])
    if text is None:
        message = f"{page.file.src_uri}: the page documents `{name}`, which stnca.cli has not"
        if strict:
            raise PluginError(message)
        log.warning(message)
        return f'!!! warning "Not available"\n\n    `{name}` is not a command of this version.\n'
    return f"```text\n$ {name} --help\n{text}\n```\n"


# --- the configuration reference -------------------------------------------------------------


def config_sections() -> dict[str, type]:
    """Marker name -> the dataclass of that config section (every ``[data]`` source)."""
    from stnca.train import config

    sections = {"model": config.ModelConfig}
    sections.update({f"data.{name}": cls for name, cls in config.DATA_SOURCES.items()})
    sections["training"] = config.TrainingConfig
    return sections


def field_docstrings(cls: type) -> dict[str, str]:
    """Each field's attribute docstring (the string literal on the line below it)."""
    module = inspect.getmodule(cls)
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            body = node.body
            docs = {}
            for statement, following in zip(body, body[1:], strict=False):
                if (
                    isinstance(statement, ast.AnnAssign)
                    and isinstance(statement.target, ast.Name)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                ):
                    docs[statement.target.id] = inspect.cleandoc(following.value.value)
            return docs
    raise PluginError(f"class {cls.__name__} not found in {module.__name__}")


def _type_name(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return f"{_type_name(options[0])} (optional)"
    if origin is tuple:
        (item,) = {a for a in typing.get_args(annotation) if a is not Ellipsis}
        return f"list of {_type_name(item)}s"
    if origin is dict:
        return f"table of {_type_name(typing.get_args(annotation)[1])}s"
    names = {int: "integer", float: "number", str: "string", bool: "boolean"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _toml(value) -> str:
    """A default as it would be written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _markdown(text: str) -> str:
    """A docstring as one table cell: RST ``code`` to Markdown, emphasis and pipes escaped."""
    parts = re.split(r"(``.+?``)", " ".join(text.split()))
    out = []
    for part in parts:
        if part.startswith("``") and part.endswith("``"):
            out.append("`" + part[2:-2].replace("|", "\\|") + "`")
        else:
            out.append(re.sub(r"([*_|])", r"\\\1", part))
    return "".join(out)


def config_table(cls: type) -> str:
    """A Markdown table of every key of a config section: key, type, default, meaning."""
    docs = field_docstrings(cls)
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    missing = [f.name for f in fields if not docs.get(f.name, "").strip()]
    if missing:
        raise PluginError(
            f"{cls.__module__}.{cls.__name__}: add an attribute docstring below the field(s) "
            f"{', '.join(missing)} (the configuration reference is generated from them)"
        )
    rows = ["| Key | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
    for field in fields:
        if field.default_factory is not dataclasses.MISSING:
            default = f"`{_toml(field.default_factory())}`"
        elif field.default is dataclasses.MISSING:
            default = "required"
        elif field.default is None:
            default = "unset"
        else:
            default = f"`{_toml(field.default)}`"
        rows.append(
            f"| `{field.name}` | {_type_name(hints[field.name])} | {default} "
            f"| {_markdown(docs[field.name])} |"
        )
    return "\n".join(rows) + "\n"


def _config_block(match: re.Match, used: set[str]) -> str:
    sections = config_sections()
    name = match.group(1)
    if name not in sections:
        raise PluginError(f"unknown config section {name!r}; known: {', '.join(sections)}")
    used.add(name)
    return config_table(sections[name])


# --- the hook --------------------------------------------------------------------------------


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace the ``cli:`` and ``config:`` markers of a page with generated text."""
    strict = bool(config.get("strict"))
    markdown = CLI_MARKER.sub(lambda m: _cli_block(m, page, strict), markdown)
    used: set[str] = set()
    markdown = CONFIG_MARKER.sub(lambda m: _config_block(m, used), markdown)
    if used:  # the configuration reference: it must cover every section
        left_out = sorted(set(config_sections()) - used)
        if left_out:
            raise PluginError(
                f"{page.file.src_uri} documents config sections but not {', '.join(left_out)}: "
                f"add <!-- config: NAME --> markers for them"
            )
    return markdown
