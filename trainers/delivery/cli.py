"""The push command: `python -m trainers.push` (and `tfposenc-push`).

Flags mirror `trainers.delivery.push.push`'s arguments and parse before TensorFlow is
imported: a bad flag or argument gets one line naming it and exit code 2 (no TensorFlow
log before it), a refused candidate exit code 1 with every check. The
run's experiment (whose `evaluation_data` hook rebuilds its test set) is found by name
in `trainers.framework.registry`.
"""

from tfposenc.vocabulary import PUSH_METRICS, TARGETS
from trainers.framework.cli import Parser, import_tensorflow_quietly


def _parser():
    parser = Parser(
        prog="python -m trainers.push",
        description="Validates an exported SavedModel (infra and model) and pushes it "
        "as the next version under --serving-base.",
    )
    add = parser.add_argument
    add("--export", required=True, help="exported version directory (holds saved_model.pb)")
    add("--serving-base", required=True, help="base path of the served model")
    add("--eval-run", help="run directory whose test set evaluates (default: the export's run)")
    add("--eval-data", help="evaluate on this dataset's test split instead (e.g. digits)")
    add("--grid-size", type=int, help="grid size k of --eval-data canvases")
    add("--task", choices=TARGETS, help="target of --eval-data canvases")
    add("--cell-size", type=int, help="cell size of --eval-data canvases (default: theirs)")
    add("--eval-examples", type=int, help="test images of --eval-data (default: all)")
    add("--metric", default="accuracy", choices=PUSH_METRICS, help="metric the thresholds apply to")
    add("--min-value", type=float, help="least metric value to push")
    add("--max-regression", type=float, help="most the metric may fall below the served one")
    add("--keep", type=int, help="after a push, retire versions beyond the newest N")
    add(
        "--allow-signature-change",
        action="store_true",
        help="push a candidate whose signatures differ from the served version's "
        "(refused by default, with every difference listed)",
    )
    return parser


def main(argv=None):
    """`python -m trainers.push` and the `tfposenc-push` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    import_tensorflow_quietly()
    # TensorFlow only once the flags parse: a bad flag gets its one line and nothing else.
    from trainers.delivery.push import push  # noqa: PLC0415

    try:
        result = push(
            args.export,
            args.serving_base,
            eval_run=args.eval_run,
            eval_data=args.eval_data,
            grid_size=args.grid_size,
            task=args.task,
            cell_size=args.cell_size,
            eval_examples=args.eval_examples,
            metric=args.metric,
            min_value=args.min_value,
            max_regression=args.max_regression,
            keep=args.keep,
            allow_signature_change=args.allow_signature_change,
        )
    except (ValueError, OSError) as error:
        parser.error(str(error))
    for remark in result.get("remarks", []):
        print(f"NOTE {remark}")
    for check in result["checks"]:
        print(f"{'PASS' if check['passed'] else 'FAIL'} {check['check']}: {check['message']}")
    if not result["pushed"]:
        print(f"refused: nothing pushed, {args.serving_base} unchanged", flush=True)
        return 1
    print(f"pushed version {result['version']}: {result['path']}", flush=True)
    return 0


__all__ = ["main"]
