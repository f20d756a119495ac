"""Check an export with the framework itself, when it is installed.

- verl: compose its shipped trainer config (``verl/trainer/config/ppo_trainer.yaml`` or
  ``ppo_megatron_trainer.yaml``, with their defaults lists) with our overrides through
  Hydra's compose API, which runs in struct mode and refuses a key the config does not
  have, as ``python -m verl.trainer.main_ppo`` would; then resolve it as verl's task
  runner does. Also checks every key against the wheel's flattened
  ``_generated_<name>.yaml``. Needs ``verl`` (``pip install --no-deps verl``) and
  ``hydra-core``; nothing of verl is imported (its package imports torch and ray).
- OpenRLHF: execute the argument parser of ``openrlhf/cli/train_ppo_ray.py`` on our
  flags, and then its own argument checks: the ``__main__`` block up to the call of
  ``train``, and the assertions ``train()`` makes before it starts Ray (the statements
  that do anything else are left out). Only the source file is read: no torch, ray or
  deepspeed. Needs ``openrlhf`` (``pip install --no-deps openrlhf``).

Both raise ``PlanError`` with the framework's own message when it refuses.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
from pathlib import Path

from planner.errors import PlanError


def package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def installed_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


# ---- verl ---------------------------------------------------------------------------------------
def verl_config_dir() -> Path:
    root = package_dir("verl")
    if root is None:
        raise PlanError("verl is not installed: `pip install --no-deps verl==0.9.1 hydra-core` to check the export")
    return root / "trainer" / "config"


def compose_verl(overrides: list[str], config_name: str = "ppo_trainer") -> dict:
    """verl's config composed with ``overrides`` (Hydra strings), resolved; PlanError if refused."""
    try:
        from hydra import compose, initialize_config_dir
        from hydra.errors import HydraException
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException
    except ImportError:
        raise PlanError("checking a verl export needs hydra-core: `pip install hydra-core`") from None
    config_dir = verl_config_dir()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            cfg = compose(config_name=config_name, overrides=list(overrides))
        composed = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise PlanError(f"verl {installed_version('verl')} refuses the overrides: {_one_line(err)}") from None
    flat = config_dir / f"_generated_{config_name}.yaml"
    if flat.is_file():
        generated = OmegaConf.load(flat)
        OmegaConf.set_struct(generated, True)
        for item in overrides:
            key = item.split("=", 1)[0].lstrip("+~")
            if not _has_key(generated, key):
                raise PlanError(f"verl {installed_version('verl')}: {key} is not in {flat.name}")
    return composed


def _has_key(cfg, dotted: str) -> bool:
    """Whether ``dotted`` names a key of ``cfg`` (a mandatory ``???`` value counts as present)."""
    from omegaconf import DictConfig, OmegaConf

    parent, _, leaf = dotted.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return isinstance(node, DictConfig) and leaf in node.keys()


# ---- OpenRLHF -----------------------------------------------------------------------------------
def openrlhf_script() -> Path:
    root = package_dir("openrlhf")
    if root is None:
        raise PlanError("OpenRLHF is not installed: `pip install --no-deps openrlhf==0.11.2` to check the export")
    return root / "cli" / "train_ppo_ray.py"


def check_openrlhf(argv: list[str]):
    """``train_ppo_ray``'s parsed and checked arguments for ``argv`` (flags only); PlanError
    with OpenRLHF's message when its parser or one of its checks refuses them."""
    script = openrlhf_script()
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    main_block = _main_block(tree)
    train_checks = _guarded_asserts(_function(tree, "train").body)
    hierarchize = _load_function(script.parent.parent / "utils" / "config.py", "hierarchize")
    checks = ast.Module(body=_until_train_call(main_block) + train_checks, type_ignores=[])
    ast.fix_missing_locations(checks)
    namespace = {"argparse": argparse, "os": __import__("os"), "datetime": __import__("datetime").datetime,
                 "hierarchize": hierarchize, "ARGV": list(argv), "__name__": "openrlhf_check"}
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            exec(compile(checks, str(script), "exec"), namespace)  # noqa: S102 - OpenRLHF's own checks
    except SystemExit:
        raise PlanError(f"OpenRLHF's parser refuses the command line: {_last_line(stderr.getvalue())}") from None
    except AssertionError as err:
        raise PlanError(f"OpenRLHF's checks refuse the command line: {_one_line(err)}") from None
    return namespace["args"]


def _main_block(tree: ast.Module) -> list[ast.stmt]:
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return node.body
    raise PlanError("OpenRLHF's train_ppo_ray.py has no __main__ block: this OpenRLHF is not supported")


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise PlanError(f"OpenRLHF's train_ppo_ray.py has no {name}(): this OpenRLHF is not supported")


def _until_train_call(body: list[ast.stmt]) -> list[ast.stmt]:
    """The ``__main__`` block with ``parse_args()`` reading our argv, its imports replaced by
    the functions we load, and nothing from the call of ``train`` on."""
    kept = []
    for stmt in body:
        text = ast.unparse(stmt)
        if isinstance(stmt, ast.Expr) and text.startswith("train("):
            break
        if isinstance(stmt, (ast.Import, ast.ImportFrom)) or "patch_hub" in text:
            continue
        kept.append(stmt)
    source = "\n".join(ast.unparse(s) for s in kept).replace("parser.parse_args()", "parser.parse_args(ARGV)")
    return ast.parse(source).body


def _guarded_asserts(body: list[ast.stmt]) -> list[ast.stmt]:
    """The assertions of ``body`` with the ``if`` conditions that guard them; every other
    statement (Ray placement groups, engines, actors) is dropped."""
    kept = []
    for stmt in body:
        if isinstance(stmt, ast.Assert):
            kept.append(stmt)
        elif isinstance(stmt, ast.If):
            inner = _guarded_asserts(stmt.body)
            if inner:
                kept.append(ast.If(test=stmt.test, body=inner, orelse=[]))
    return kept


def _load_function(path: Path, name: str):
    """One function of a framework module, read from its file (the package's __init__ imports torch)."""
    namespace: dict = {}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)  # noqa: S102
    return namespace[name]


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


__all__ = ["compose_verl", "check_openrlhf", "installed_version", "package_dir"]
