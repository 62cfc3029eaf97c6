"""Seeds, a framework concept: one `--seeds`, one name format, one aggregation.

Every experiment runs each of its combinations once per seed of `--seeds`
(`TrainConfig.seeds`; `()` means `--seed` alone, `TrainConfig.seed_list`), names each run
`<group>-seed<seed>` (`trainers.framework.config.seeded_name`), and turns the per-seed
records into one record per group with `aggregate`: the mean over seeds of the named
numeric fields, their sample standard deviation `<field>_std` (n - 1 degrees of freedom;
0.0 for one seed) and the per-seed records under `seeds`, sorted by seed.
`trainers.framework.experiment.Experiment.aggregate` does this by default; an
experiment adds its own extras to the records it returns. Nothing here imports TensorFlow.
"""

import math
import numbers

from trainers.framework.reports import mean_std


def group_of(record):
    """The group of a per-seed record: its `combination` name without `-seed<seed>`."""
    name, suffix = record["combination"], f"-seed{record['seed']}"
    if not name.endswith(suffix):
        raise ValueError(
            f"`combination` of a seed-{record['seed']} record must end in {suffix!r}. "
            f"Received: combination={name!r}"
        )
    return name[: -len(suffix)]


def mean_and_std(values):
    """`(mean, sample standard deviation)` of numbers, None skipped: `(None, None)` when
    every value is None, the deviation 0.0 for one value (a NaN makes both NaN)."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None, None
    if any(math.isnan(v) for v in values):
        return math.nan, math.nan
    return mean_std(values)


def over_seeds(runs, fields):
    """`{field: mean, field_std: sample SD}` of each of `fields` the runs hold (a field
    every run lacks is left out; one that some runs lack is an error)."""
    values = {}
    for field in fields:
        held = [field in r for r in runs]
        if not any(held):
            continue
        if not all(held):
            raise ValueError(
                f"`{field}` must be in every seed's record or in none. Received: "
                f"{field!r} in the records of seeds {[r['seed'] for r in runs if field in r]} "
                f"of {[r['seed'] for r in runs]}"
            )
        for r in runs:
            value = r[field]
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, numbers.Real)
            ):
                raise ValueError(
                    f"`{field}` must be a number or None. Received: {field}={value!r} "
                    f"(seed {r['seed']})"
                )
        values[field], values[f"{field}_std"] = mean_and_std(r[field] for r in runs)
    return values


def aggregate(records, fields, group=group_of, keep=True):
    """One record per group (see the module docstring), in first-seen order.

    Args:
        records: list of dict. Per-seed records, each with its `seed`; a record without
            one (an experiment with no seeds) is its own group, returned as it is.
        fields: tuple of str. The numeric fields averaged: `field` (mean over seeds,
            None values skipped) and `field_std` (sample standard deviation).
        group: callable. A record's group (the name shared by its seeds); defaults to
            its `combination` without `-seed<seed>` (`group_of`).
        keep: bool. Whether the aggregated record starts from the lowest seed's values
            (without `seed`); False: only `combination`, the fields and `seeds`.
            Defaults to True.

    Returns:
        list of dict: `combination` (the group), the fields, `<field>_std` and `seeds`.
    """
    out, groups = [], {}  # `out`: the records without a seed and the groups' names
    for record in records:
        if "seed" not in record:
            out.append(record)
            continue
        key = group(record)
        if key not in groups:
            groups[key] = []
            out.append(key)
        groups[key].append(record)
    for index, key in enumerate(out):
        if isinstance(key, dict):
            continue
        runs = sorted(groups[key], key=lambda r: r["seed"])
        base = {k: v for k, v in runs[0].items() if k != "seed"} if keep else {}
        out[index] = {**base, "combination": key, **over_seeds(runs, fields), "seeds": runs}
    return out


__all__ = ["aggregate", "group_of", "mean_and_std", "over_seeds"]
