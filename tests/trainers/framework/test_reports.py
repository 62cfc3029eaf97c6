"""The opening paragraph of `results.md` from a run's claims (`reports.run_shows`)."""

from trainers.framework import reports

# The claims formats of the experiments: channel-wise (claim, verdict, evidence) and the
# attack (plus the combination and the fraction removed).
CHANNELWISE = [
    {"claim": "PermuteNet locates above chance at k=3", "verdict": "shown", "evidence": "e1"},
    {"claim": "SortNet tracks the classifier", "verdict": "inconclusive", "evidence": "e2"},
    {"claim": "a classifier locates at k=5", "verdict": "not shown", "evidence": "e3"},
]
ATTACK = [
    {
        "claim": "ranked removal hurts more than random",
        "combination": "zero-location",
        "fraction": 0.2,
        "verdict": "not shown",
        "evidence": "e4",
    },  # fmt: skip
    {
        "claim": "ranked removal hurts more than random",
        "combination": "zero-location",
        "fraction": 0.8,
        "verdict": "shown",
        "evidence": "e5",
    },  # fmt: skip
]


def test_counts_every_verdict_and_names_the_claims_not_shown():
    lines = reports.run_shows(CHANNELWISE)
    assert lines[0] == (
        "**What this run shows.** This run reproduces the paper **only in part**: of 3 "
        "claims checked, 1 shown, 1 not shown, 1 inconclusive."
    )
    assert [line.split(":")[0] for line in lines if line.startswith("- ")] == [
        "- **shown** (1)",
        "- **not shown** (1)",
        "- **inconclusive** (1)",
    ]
    assert "Not shown: a classifier locates at k=5." in lines


def test_the_attack_claims_name_the_model_and_the_fraction():
    lines = reports.run_shows(ATTACK)
    assert "of 2 claims checked, 1 shown, 1 not shown." in lines[0]
    assert "Not shown: ranked removal hurts more than random (zero-location, 20% removed)." in lines


def test_all_shown_reproduces_inconclusive_does_not_settle_and_none_says_so():
    shown = [dict(c, verdict="shown") for c in CHANNELWISE]
    assert (
        "This run **reproduces** every claim it checks: of 3 claims checked, 3 shown."
        in (reports.run_shows(shown)[0])
    )
    assert not [line for line in reports.run_shows(shown) if line.startswith("Not shown")]
    unsettled = reports.run_shows(CHANNELWISE[:2])
    assert (
        "This run does not settle every claim: of 2 claims checked, 1 shown, 1 inconclusive"
        in (unsettled[0])
    )
    assert "judges no claim automatically" in reports.run_shows([])[0]
    alone = reports.run_shows([dict(CHANNELWISE[2])])[0]
    assert "This run does **not reproduce** the paper: of 1 claim checked, 1 not shown." in alone


def test_the_opening_goes_after_the_title_or_first():
    assert reports.with_opening(["# T", "", "body"], ["P"]) == ["# T", "", "P", "", "body"]
    assert reports.with_opening(["body"], ["P"]) == ["P", "", "body"]
    assert reports.with_opening([], ["P"]) == ["P"]
