"""`snnmem-torch measure PROFILE.yaml [--strategy ...] [-o out.json]` (also `python -m snnmem_torch`) and
`snnmem-torch export MODULE:FACTORY --input 3x32x32 [--timesteps 4] [--batch 16] -o profile.yaml` (a sequence
model: `--input 700 --per-timestep`, [T, B, 700]) and
`snnmem-torch check MODULE:FACTORY --input 3x32x32 [...]` (export, plan, measure the module: predicted
against measured; exit 1 when they disagree) and `snnmem-torch sweep PROFILE --timesteps 1,2,4` (plan and
measure at each T, sweep.py).

Exit codes: 0 success, 2 bad input (a profile error, a profile PyTorch + SpikingJelly cannot
express, a bad option), 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import ProfileError, UsageError

STRATEGIES = ("bptt", "sltt", "checkpoint", "revsnn", "trevsnn")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse exits 2 too; keep its usage line
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="snnmem-torch", description="Measure what PyTorch + SpikingJelly keep and allocate in one "
                "training step of an snnmem profile.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    m = sub.add_parser("measure", help="measure one training step and write snnmem-torch-measurement/1 JSON")
    m.add_argument("profile", help="profile YAML file (e.g. profiles/cifarnet.yaml)")
    m.add_argument("--strategy", choices=STRATEGIES, default="bptt")
    m.add_argument("--batch", type=_positive, help="batch size (default: the profile's)")
    m.add_argument("--timesteps", type=_positive, help="timesteps T (default: the profile's)")
    m.add_argument("--segment", type=_positive, help="checkpoint segment length k (default round(sqrt(T)))")
    m.add_argument("--dtype", choices=("float32", "float16", "bfloat16"),
                   help="override the profile's dtype; float16/bfloat16 run a float32 model under torch.autocast "
                   "(float16 with a GradScaler), as mixed-precision training does (default: the profile's)")
    m.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    m.add_argument("--neuron-backend", choices=("auto", "torch", "cuda", "triton"), default="torch",
                   help="SpikingJelly's CUDA neuron implementation (default torch; CPU always runs torch)")
    m.add_argument("--no-stream", action="store_true", help="leave the allocation stream out of the JSON "
                   "(the peak, its moment and the per-layer saved tensors stay)")
    m.add_argument("--stream-limit", type=_positive, metavar="BYTES", help="when the JSON would be larger than "
                   "BYTES with the stream, write the stream compactly (events without spaces or null timesteps), "
                   "else minimally (also without kernels, addresses numbered 1, 2, ...), whichever fits first "
                   "(recorded in allocationsForm), else leave it out")
    m.add_argument("--verify", action="store_true", help="checkpoint: also compare its gradients with bptt's "
                   "(or with the same segmented forward without checkpointing when batch norm spans segments); "
                   "revsnn: with bptt's, and the reconstruction error of every reversible block's input; "
                   "trevsnn: with bptt's, and the reconstruction error of every rebuilt column state")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("-o", "--output", help="write the JSON here (atomically); default: print only the table")
    m.add_argument("--json", action="store_true", help="print the JSON to stdout instead of the table")

    e = sub.add_parser("export", help="export a profile from a PyTorch / SpikingJelly module (torch.fx)")
    _model_arguments(e)
    e.add_argument("--strategy", choices=STRATEGIES, help="the strategy to plan first (named in the next command "
                   "printed; a profile holds no strategy)")
    e.add_argument("-o", "--output", help="write the profile here (atomically); default: print it")

    c = sub.add_parser("check", help="export a module's profile, plan it with snnmem and measure the module itself: "
                       "predicted against measured (exit 0 when they agree, 1 when not, 2 bad input)")
    _model_arguments(c)
    c.add_argument("--strategy", choices=("bptt", "sltt", "checkpoint"), default="bptt")
    c.add_argument("--segment", type=_positive, help="checkpoint segment length k (default round(sqrt(T)))")
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cpu plans pytorch-cpu, cuda "
                   "pytorch-cuda (default cpu)")
    c.add_argument("--tolerance", type=float, default=1.0, metavar="PERCENT", help="how far the measured step "
                   "peak may be from the predicted one (default 1%%); saved bytes must be equal")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("-o", "--output", help="keep the exported profile here (atomically); default: a temporary file")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON (snnmem-torch.check)")

    w = sub.add_parser("sweep", help="plan (snnmem CLI) and measure (PyTorch) one training step at several T: "
                       "saved bytes and step peak, predicted against measured (exit 1 when a peak is off by more "
                       "than --tolerance or bptt's saved bytes differ)")
    w.add_argument("profile", help="profile YAML file")
    w.add_argument("--timesteps", required=True, type=_positive_list, help="comma-separated T, e.g. 1,2,4")
    w.add_argument("--batch", type=_positive, help="batch size (default: the profile's)")
    w.add_argument("--runtime", choices=("pytorch-cpu", "pytorch-cuda"), default="pytorch-cpu")
    w.add_argument("--strategies", default="bptt", help="comma-separated: bptt, sltt, checkpoint (default bptt)")
    w.add_argument("--tolerance", type=float, default=1.0, metavar="PERCENT", help="peak tolerance (default 1)")
    w.add_argument("--seed", type=int, default=0)
    return p


def _positive_list(text: str) -> list:
    values = [_positive(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"'{text}' lists no timesteps (e.g. 1,2,4)")
    return values


def _model_arguments(e: argparse.ArgumentParser) -> None:
    """What `export` and `check` read a model with: the factory, its arguments and the run's settings."""
    e.add_argument("factory", metavar="MODULE:FACTORY", help="a module (or a .py file) and a callable in it that "
                   "returns the nn.Module, or the nn.Module itself (e.g. mynets:make_net, net.py:Net)")
    e.add_argument("--kwarg", action="append", default=[], metavar="NAME=VALUE", help="an argument for FACTORY: a "
                   "Python literal or an importable name (spiking_neuron=spikingjelly.activation_based.neuron.LIFNode);"
                   " repeat for more")
    e.add_argument("--input", required=True, type=_sample_shape, metavar="CxHxW|N", help="one sample's shape: "
                   "C x H x W images (e.g. 3x32x32), or N features per timestep for a sequence [T, B, N] (e.g. 700, "
                   "with --per-timestep for SHD-style spike trains)")
    e.add_argument("--timesteps", type=_positive, default=4, help="timesteps T (default 4)")
    e.add_argument("--per-timestep", action="store_true", help="the input changes every timestep (event frames, "
                   "[T, B, C, H, W], or a sequence's feature vectors, [T, B, N]) instead of one sample repeated over T")
    e.add_argument("--batch", type=_positive, default=16, help="batch size (default 16)")
    e.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="default sgd")
    e.add_argument("--lr", type=float, help="learning rate (default 0.1 for sgd, 0.001 for adam)")
    e.add_argument("--momentum", type=float, help="sgd momentum (default 0.9)")
    e.add_argument("--weight-decay", type=float, default=0.0)
    e.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="float16/bfloat16: a run under torch.autocast (default float32)")
    e.add_argument("--name", help="the profile's name (default: the model's class name)")


def _sample_shape(text: str) -> tuple:
    """CxHxW (images) or N (features of a sequence): one sample's shape, (C, H, W) or (N,)."""
    parts = text.strip().lower().split("x")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) not in (1, 3) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is neither CxHxW images (e.g. 3x32x32) nor N features per "
                                         "timestep (e.g. 700): give whole numbers of at least 1")
    return values


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command == "measure":
        return _measure(args)
    if args.command == "export":
        return _export(args)
    if args.command == "check":
        return _check(args)
    if args.command == "sweep":
        return _sweep(args)
    return 2  # pragma: no cover


def _sweep(args) -> int:
    from .sweep import sweep, table

    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    unknown = [s for s in strategies if s not in ("bptt", "sltt", "checkpoint")]
    if unknown or not strategies:
        print(f"snnmem-torch: error: --strategies {args.strategies}: use bptt, sltt and checkpoint", file=sys.stderr)
        return 2
    try:
        from .profile import load
        batch = args.batch if args.batch is not None else load(args.profile).batch
        points = sweep(args.profile, args.timesteps, batch, args.runtime, strategies, args.seed)
    except ProfileError as error:
        print(str(error), file=sys.stderr)
        return 2
    except UsageError as error:
        print(f"snnmem-torch: error: {error}", file=sys.stderr)
        return 2
    print(table(points, args.profile, batch, args.runtime))
    return 0 if all(p.agrees(args.tolerance / 100) for p in points) else 1


def _model_and_optimizer(args) -> tuple:
    """The model FACTORY makes and the optimizer settings; raises UsageError for bad ones."""
    from .export import load_factory, parse_kwarg

    try:
        kwargs = dict(parse_kwarg(text) for text in args.kwarg)
        model = load_factory(args.factory, kwargs)
    except ValueError as error:
        raise UsageError(str(error)) from None
    optimizer = {"type": args.optimizer, "weight_decay": args.weight_decay}
    if args.lr is not None:
        optimizer["lr"] = args.lr
    if args.momentum is not None:
        if args.optimizer != "sgd":
            raise UsageError("--momentum is an SGD setting; Adam uses beta1 and beta2")
        optimizer["momentum"] = args.momentum
    return model, optimizer


def _export(args) -> int:
    from .export import ExportError, export_profile

    try:
        model, optimizer = _model_and_optimizer(args)
    except UsageError as error:
        print(f"snnmem-torch: error: {error}", file=sys.stderr)
        return 2
    try:
        text = export_profile(model, args.input, timesteps=args.timesteps, batch=args.batch, optimizer=optimizer,
                              dtype=args.dtype, name=args.name, output=args.output, source=args.factory,
                              input_per_timestep=args.per_timestep)
    except ExportError as error:
        print(str(error), file=sys.stderr)
        return 2
    except ProfileError as error:  # the exported text did not read back: a bug here, reported as such
        print(f"snnmem-torch: internal error: the exported profile does not load:\n{error}", file=sys.stderr)
        return 1
    if args.output:
        strategy = f" --strategy {args.strategy}" if args.strategy else ""
        print(f"wrote {args.output}; next: snnmem plan {args.output}{strategy} --runtime pytorch-cpu")
    else:
        sys.stdout.write(text)
    return 0


def _check(args) -> int:
    import json

    from .check import check_model, table
    from .export import ExportError

    if args.segment is not None and args.strategy != "checkpoint":
        print("snnmem-torch: error: --segment applies to the checkpoint strategy only", file=sys.stderr)
        return 2
    if not 0 <= args.tolerance <= 100:
        print(f"snnmem-torch: error: --tolerance {args.tolerance}: give a percentage between 0 and 100",
              file=sys.stderr)
        return 2
    try:
        model, optimizer = _model_and_optimizer(args)
        if args.device == "cuda":
            import torch
            if not torch.cuda.is_available():
                raise UsageError("--device cuda: no CUDA device is available to PyTorch here")
        result = check_model(model, args.input, timesteps=args.timesteps, batch=args.batch, strategy=args.strategy,
                             segment=args.segment, optimizer=optimizer, dtype=args.dtype, name=args.name,
                             profile_out=args.output, source=args.factory, device=args.device,
                             tolerance_percent=args.tolerance, seed=args.seed,
                             input_per_timestep=args.per_timestep)
    except ExportError as error:
        print(str(error), file=sys.stderr)
        return 2
    except (UsageError, ProfileError) as error:
        print(f"snnmem-torch: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    else:
        print(table(result))
    return 0 if result.agrees else 1


def _measure(args) -> int:
    from .build import select_neuron_backend

    if args.device == "cuda":
        if "SJ_LIF_CUDA_IMPLEMENTATION" not in os.environ:
            select_neuron_backend(args.neuron_backend)
    try:
        import torch

        if args.device == "cuda" and not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available to PyTorch here")
        from . import output
        from .measure import measure

        result = measure(args.profile, args.strategy, args.batch, args.timesteps, args.segment, args.device,
                         stream=not args.no_stream, verify=args.verify, seed=args.seed, dtype=args.dtype)
    except ProfileError as error:
        print(str(error), file=sys.stderr)
        return 2
    except UsageError as error:
        print(f"snnmem-torch: error: {error}", file=sys.stderr)
        return 2
    form = "full"
    if args.stream_limit and result.get("allocations") is not None:
        sizes = {}
        for candidate in output.STREAM_FORMS:
            result["allocationsForm"] = candidate
            sizes[candidate] = len(output.dumps(result, candidate))
            if sizes[candidate] <= args.stream_limit:
                form = candidate
                break
        else:
            result["allocations"] = None
            result["allocationsForm"] = None
            result["allocationsOmitted"] = (f"the {result['allocationCount']} events would make the file "
                                            f"{sizes['full']} bytes ({sizes['minimal']} written minimally), over "
                                            f"--stream-limit {args.stream_limit}")
    if args.output:
        output.write(args.output, result, form)
    if args.json:
        sys.stdout.write(output.dumps(result, form))
    else:
        print(output.table(result))
        if args.output:
            print(f"wrote {args.output}")
    if result.get("warning"):
        print(f"warning: {result['warning']}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
