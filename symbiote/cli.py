"""The ``symbiote`` command line.

Each sub-command lives in its own module ``symbiote.commands.<name>`` exposing
``add_arguments(parser)`` and ``run(args) -> int``; heavy imports happen inside ``run``.
User errors (:class:`symbiote.errors.SymbioteError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib import import_module

from symbiote import __version__
from symbiote.errors import SymbioteError

#: when the command line was imported (time.monotonic), the earliest moment symbiote sees:
#: ``--budget-seconds`` counts from here when the process was exec'd from an older one
ENTERED = time.monotonic()

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("symbiote.commands.inspect", "print a per-layer table of a model: shapes, MACs, params"),
    "transform": ("symbiote.commands.transform", "run a pass pipeline on a model and write the result"),
    "passes": ("symbiote.commands.passes", "list the registered passes and their arguments"),
    "cost": ("symbiote.commands.cost", "price a model on an accelerator template"),
    "backends": ("symbiote.commands.backends", "list the accelerator templates and their knobs"),
    "search": ("symbiote.commands.search", "co-design the model and the accelerator"),
    "finetune": ("symbiote.commands.finetune", "win back a reshaped model's accuracy by distillation from the original"),
    "profile": ("symbiote.commands.profile", "measure latency against a channel group's width on this CPU (onnxruntime)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symbiote", description="Co-design a DNN and the accelerator that runs it.")
    parser.add_argument("--version", action="version", version=f"symbiote {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        try:
            mod = import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue  # command not built yet
        p = sub.add_parser(name, help=help_, description=help_)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except SymbioteError as e:
        msg = " ".join(str(e).split())
        print(f"symbiote {args.command}: error: {msg}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
