"""`--push-to`: a finished run's exports delivered through the validated push.

Every trainer's config has `push_to`, `push_min_value` and `push_max_regression`; when
`push_to` is set, the runner calls `push_exports` after the report, and each
combination's newest export goes through `trainers.delivery.push.push` (infra validation in a
fresh process, model validation against the served version, atomic versioned copy with
a lineage record) into `push_to/<combination>`.
"""

import os

from tfposenc.export import versions
from trainers.delivery.push import push


def push_exports(experiment, config, combinations):
    """`--push-to`: every combination's newest export through `trainers.delivery.push.push`
    (infra and model validation, atomic versioned copy) into `push_to/<name>`.

    A refused candidate (or a push that raises) is reported, not fatal here: the serving
    directory stays as it was, and the command line exits 1 after writing the results.
    Returns one record per combination: name, pushed, version, failed checks.
    """
    records = []
    for combination in combinations:
        base = os.path.join(config.out, "exports", combination.name)
        done = versions(base)
        if not done:
            continue
        try:
            outcome = push(
                os.path.join(base, str(done[-1])),
                os.path.join(config.push_to, combination.name),
                eval_run=config.out,
                min_value=config.push_min_value,
                max_regression=config.push_max_regression,
                experiments={experiment.name: experiment},
            )
        except Exception as error:  # noqa: BLE001 - recorded; the other exports go on
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            outcome = {"pushed": False, "checks": [{"passed": False, "message": reason}]}
        failed = [c["message"] for c in outcome.get("checks", []) if not c.get("passed")]
        print(
            f"   push {combination.name}: "
            + (f"version {outcome['version']}" if outcome["pushed"] else "refused")
            + (f" ({'; '.join(failed)})" if failed else ""),
            flush=True,
        )
        records.append(
            {
                "combination": combination.name,
                "pushed": bool(outcome["pushed"]),
                "version": outcome.get("version"),
                "path": outcome.get("path"),
                "failed_checks": failed,
            }
        )
    return records


__all__ = ["push_exports"]
