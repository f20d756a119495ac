"""``plan export PLAN --to verl|openrlhf``: the framework config that realises a plan.

Prints the command (and, with ``--out DIR``, writes it with the files the framework needs:
verl's overrides, a resource-pool mapping when the placement needs one, a run script and
an explanation). ``--check`` runs the framework's own config composition or argument
parser on the export when the framework is installed.
"""

from __future__ import annotations

from pathlib import Path

from planner.errors import PlanError, require


def add_arguments(parser, name: str) -> None:
    from planner.cli.formats import add_format_arguments
    from planner.export import TARGETS

    parser.add_argument("plan", help="a plan JSON written by `plan ... --out plan.json`")
    parser.add_argument("--to", required=True, choices=TARGETS, help="the framework to export to")
    parser.add_argument("--out", metavar="DIR", help="write the command and the framework's files into this folder")
    parser.add_argument("--model-path", action="append", default=[], metavar="ROLE=PATH",
                        help="where the framework loads a role's model from (repeatable; default: the zoo "
                             "model's Hugging Face id, or the model's name)")
    parser.add_argument("--engine", choices=("auto", "fsdp", "megatron"), default="auto",
                        help="verl's trainer engine: auto (FSDP unless the plan needs tensor/pipeline parallelism), "
                             "fsdp, or megatron (also realises ZeRO-1 exactly)")
    parser.add_argument("--check", action="store_true",
                        help="check the export with the installed framework (verl's config, OpenRLHF's parser)")
    add_format_arguments(parser)


def run(args, name: str) -> int:
    from planner.export import export_plan
    from planner.export.common import parse_model_paths
    from planner.plan import load_plan

    plan = load_plan(args.plan)
    paths = parse_model_paths(args.model_path, list(plan.get("roles", {})))
    out = _check_folder(args.out) if args.out else None
    require(args.engine == "auto" or args.to == "verl", "--engine is for --to verl")
    export = export_plan(plan, args.to, paths, args.engine)
    checked = check_export(export) if args.check else None
    if out is not None:
        _write(out, export.files)
    if args.format != "table":
        from planner.cli.formats import emit

        data = export.to_dict()
        data["checked"] = checked
        data["written_to"] = str(out) if out is not None else None
        emit(data, args.format)
        return 0
    _print(export, checked, out)
    return 0


def check_export(export) -> str:
    """Run the framework's own checks on ``export``; a one-line verdict, or PlanError."""
    from planner.export.checks import check_openrlhf, compose_verl, installed_version

    if export.framework == "verl":
        from planner.export.verl import override_list

        overrides = override_list(export.settings["overrides"])
        compose_verl(overrides, export.settings["config_name"])
        verdict = (f"verl {installed_version('verl')} composes {export.settings['config_name']} with all "
                   f"{len(overrides)} overrides (struct mode)")
    else:
        check_openrlhf(export.settings["argv"])
        verdict = f"OpenRLHF {installed_version('openrlhf')}'s train_ppo_ray parser and checks accept the command"
    version = installed_version(export.framework)
    if version != export.version:
        verdict += f" (the export targets {export.version})"
    return verdict


def _check_folder(text: str) -> Path:
    path = Path(text)
    require(not path.exists() or path.is_dir(), f"--out {text!r} is a file: give a folder, e.g. {text}.d")
    require(path.parent.is_dir() or path.is_dir(),
            f"--out {text!r}: folder {str(path.parent)!r} does not exist: create it or write elsewhere")
    return path


def _write(folder: Path, files: dict[str, str]) -> None:
    """Write every file, each atomically; a failure leaves no half-written file."""
    try:
        folder.mkdir(exist_ok=True)
        for name, text in files.items():
            target = folder / name
            tmp = target.with_name(name + ".tmp")
            tmp.write_text(text)
            if name.endswith(".sh"):
                tmp.chmod(0o755)
            tmp.replace(target)
    except OSError as err:
        raise PlanError(f"cannot write the export into {str(folder)!r}: {err.strerror}: write it elsewhere") from None


def _print(export, checked: str | None, out: Path | None) -> None:
    print(f"{export.framework} {export.version}: {export.placement}")
    print()
    print(export.command)
    if export.settings.get("resource_pools"):
        import yaml

        print()
        print("resource pools (ResourcePoolManager):")
        print(yaml.safe_dump(export.settings["resource_pools"], sort_keys=False, default_flow_style=None).rstrip())
    if export.notes:
        print()
        for note in export.notes:
            print(f"note: {note}")
    if checked:
        print()
        print(f"checked: {checked}")
    if out is not None:
        print()
        print(f"wrote {', '.join(sorted(export.files))} to {out}")
