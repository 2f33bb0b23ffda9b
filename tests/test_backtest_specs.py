"""Backtest specs (benchmarks/backtest.py) move a spec's split back without reaching its test window.

A backtest is how a choice is judged without the test period (docs/PROTOCOL.md). These checks
run on every spec in experiments/ and every variant that applies to it, so a new spec or variant
whose backtest would look at the real test window, or change the gaps, fails here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from training.spec import experiments_dir, gap_days, list_problems, load_spec_file, parse_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import backtest  # noqa: E402  (a script in benchmarks/, not a package)

PERIODS = ("train", "validation", "test")
CASES = [(problem, name) for problem in list_problems() for name, variant in backtest.VARIANTS.items()
         if backtest.applies(variant, problem)]


def _source(problem: str) -> dict:
    return yaml.safe_load((experiments_dir() / f"{problem}.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("problem", "variant"), CASES)
def test_backtest_keeps_order_and_gaps_and_stays_out_of_the_test_window(problem, variant):
    source = _source(problem)
    real = parse_spec(source, problem).split  # the real protocol, whose test window must stay untouched
    chosen = parse_spec(backtest.merged(source, backtest.VARIANTS[variant].overrides), problem).split
    spec = parse_spec(backtest.backtest_data(source, backtest.VARIANTS[variant]), f"{problem} backtest")
    moved = spec.split  # parse_spec has checked the horizon gaps

    bounds = [moved.train.end, moved.validation.start, moved.validation.end, moved.test.start, moved.test.end]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), bounds
    # the same lengths and gaps as the variant's real split, only earlier
    assert moved.validation.start - moved.train.end == chosen.validation.start - chosen.train.end
    assert moved.test.start - moved.validation.end == chosen.test.start - chosen.validation.end
    for name in ("validation", "test"):
        assert (getattr(moved, name).end - getattr(moved, name).start
                == getattr(chosen, name).end - getattr(chosen, name).start)
    assert moved.train.start == chosen.train.start is None
    # its test period is inside the real validation window, ending where that window ends
    assert moved.test.end == real.validation.end == chosen.validation.end
    assert moved.test.start >= real.validation.start
    # and no backtest row, nor its label window, reaches the real test period
    assert max(b for b in bounds) <= real.validation.end
    assert gap_days(moved.test.end, real.test.start) >= spec.horizon_days
    assert moved.train.every_months == chosen.train.every_months


def test_the_shift_of_the_current_specs():
    children = backtest.backtest_split(_source("children-hospitalisation")["split"])
    assert children == {"train": {"start": None, "end": -30}, "validation": {"start": -26, "end": -20},
                        "test": {"start": -16, "end": -10}}
    longer = backtest.backtest_data(_source("children-hospitalisation"), backtest.VARIANTS["validation-12"])["split"]
    assert longer == {"train": {"start": None, "end": -36}, "validation": {"start": -32, "end": -20},
                      "test": {"start": -16, "end": -10}}
    homecare = backtest.backtest_split(_source("elderly-homecare_failure")["split"])
    assert homecare == {"train": {"start": None, "end": -36}, "validation": {"start": -30, "end": -24},
                        "test": {"start": -18, "end": -12}}


def test_a_test_period_longer_than_validation_or_dates_are_refused():
    longer_test = {"train": {"start": None, "end": -20}, "validation": {"start": -16, "end": -12},
                   "test": {"start": -8, "end": 0}}
    with pytest.raises(backtest.BacktestError, match="longer than validation"):
        backtest.backtest_split(longer_test)
    dated = {"train": {"start": None, "end": "2025-01-01"}, "validation": {"start": "2025-05-01", "end": "2025-11-01"},
             "test": {"start": "2026-03-01", "end": "2026-09-01"}}
    with pytest.raises(backtest.BacktestError, match="dates"):
        backtest.backtest_split(dated)


def test_variants_do_not_change_the_source():
    source = _source("children-hospitalisation")
    before = yaml.safe_dump(source)
    backtest.backtest_data(source, backtest.VARIANTS["search-before-b1596aa"])
    backtest.backtest_data(source, backtest.VARIANTS["validation-12"])
    assert yaml.safe_dump(source) == before
    search = backtest.backtest_data(source, backtest.VARIANTS["search-before-b1596aa"])["search"]["params"]
    assert search["num_leaves"] == {"type": "int", "low": 7, "high": 63, "log": True}
    assert search["learning_rate"] == source["search"]["params"]["learning_rate"]  # untouched entries stay


def test_written_specs_load(tmp_path):
    folder = backtest.write_specs("validation-12", ["children-hospitalisation"], tmp_path, experiments_dir())
    spec = load_spec_file(folder / "children-hospitalisation.yaml")
    assert (spec.split.test.start, spec.split.test.end) == (-16, -10)


@pytest.mark.parametrize(("where", "held", "message"), [
    ("dataset", '"seed": 20261206', "seed 20261206, held out"),
    ("features", '"seed": 20261206', "seed 20261206, held out"),
    ("dataset", '"seed": 1, "region": "kainuu"', "region kainuu, held out"),
    ("features", '"seed": 1, "region": "vantaa-kerava"', "region vantaa-kerava, held out"),
])
def test_held_out_data_are_refused_before_any_training(tmp_path, monkeypatch, where, held, message):
    (tmp_path / "data").mkdir()
    (tmp_path / "features").mkdir()
    held_out = tmp_path / "held-out"
    held_out.mkdir()
    (held_out / "dataset.json").write_text(f'{{"name": "final", {held}}}', encoding="utf-8")
    (tmp_path / "data" / "dataset.json").write_text('{"name": "dev", "seed": 1}', encoding="utf-8")
    if where == "dataset":
        dataset = held_out
    else:
        dataset = tmp_path / "data"
        (tmp_path / "features" / "features.json").write_text(f'{{"source": {{"data": "{held_out}"}}}}', encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["backtest.py", "run", "-p", "children-hospitalisation", "--out", str(tmp_path / "out"),
                                      "--data", str(tmp_path / "features"), "--dataset", str(dataset)])
    with pytest.raises(SystemExit, match=message):
        backtest.main()
    assert not (tmp_path / "out").exists()
