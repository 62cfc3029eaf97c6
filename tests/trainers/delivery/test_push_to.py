"""`--push-to`: a finished run delivers each export through the validated push."""

import json
import os

from trainers.channelwise import EXPERIMENT
from trainers.channelwise.config import PRESETS, ChannelwiseConfig
from trainers.framework import runner


def test_push_to_serves_each_validated_export_and_records_it(tmp_path):
    values = dict(PRESETS["smoke"])
    values.update(
        out=str(tmp_path / "run"), networks=("gapnet",), push_to=str(tmp_path / "serving")
    )
    config = ChannelwiseConfig(**values)
    results = runner.run(EXPERIMENT, config)
    (name,) = [r["combination"] for r in results]
    version = tmp_path / "serving" / name / "1"
    assert (version / "saved_model.pb").exists()
    lineage = json.load(open(version / "assets.extra" / "tfposenc_lineage.json"))
    assert name in json.dumps(lineage)
    summary = json.load(open(tmp_path / "run" / "results.json"))
    assert summary["pushes"] == [
        {
            "combination": name,
            "pushed": True,
            "version": 1,
            "path": str(version),
            "failed_checks": [],
        }
    ]

    # Resuming the finished run with a stricter gate is allowed (push settings are not
    # part of the run's identity) and refuses the same model: nothing new is served.
    stricter = ChannelwiseConfig(**{**values, "push_min_value": 101.0})
    runner.run(EXPERIMENT, stricter)
    served = [n for n in os.listdir(tmp_path / "serving" / name) if not n.startswith(".")]
    assert served == ["1"]
    pushes = json.load(open(tmp_path / "run" / "results.json"))["pushes"]
    assert pushes[0]["pushed"] is False and any("101" in m for m in pushes[0]["failed_checks"])
