"""``capplan backtest`` and ``capplan what-if`` flags: good runs and named errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from capplan_cli import backtest, whatif
from tests.unit.backtest.synthetic import T0, constant, policy, rows

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()
    backtest.register(a)
    whatif.register(a)
    return a


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("bt")
    frame = rows(3, constant(10.0))
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(d / "m.csv", index=False)
    doc = {"policies": [policy().model_dump(mode="json")]}
    (d / "p.yaml").write_text(yaml.safe_dump(doc))
    return d / "m.csv", d / "p.yaml"


def _args(files: tuple[Path, Path], *extra: str) -> list[str]:
    return ["backtest", "--metrics", str(files[0]), "--policy", str(files[1]), *extra]


def test_backtest_json_and_figure(app, files, tmp_path) -> None:  # type: ignore[no-untyped-def]
    t1 = (T0 + pd.Timedelta(days=2)).isoformat()
    t2 = (T0 + pd.Timedelta(days=2, hours=2)).isoformat()
    res = runner.invoke(
        app,
        _args(
            files,
            "--queue",
            "q",
            "--from",
            t1,
            "--to",
            t2,
            "--json",
            "--figure",
            str(tmp_path / "f.png"),
        ),
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc[0]["policy"] == "q" and len(doc[0]["windows"]) == 8
    assert Path(doc[0]["figure"]).exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--from", "yesterday-ish"], "--from"),
        (["--to", "2026-13-45"], "--to"),
        (["--from", "2026-03-03", "--to", "2026-03-02"], "--from"),
        (["--queue", "nope"], "--queue"),
        (["--policies", "nope"], "--policies"),
        (["--queue", "q", "--policies", "q"], "--queue"),
        (["--cadence-minutes", "0"], "--cadence-minutes"),
    ],
)
def test_backtest_bad_flags_exit_2_naming_the_flag(app, files, extra, needle) -> None:  # type: ignore[no-untyped-def]
    res = runner.invoke(app, _args(files, *extra))
    assert res.exit_code == 2
    assert needle in res.output


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--multiplier", "0"], "--multiplier"),
        (["--slo-wait", "-3"], "--slo-wait"),
        (["--safety-margin", "7"], "--safety-margin"),
        (["--workers", "lots"], "--workers"),
        (["--workers", "0"], "--workers"),
        (["--spike-size", "-1"], "--spike-size"),
        (["--spike-at", "30"], "--spike-size"),
        (["--spike-size", "5", "--spike-minutes", "0"], "--spike-minutes"),
        (["--spike-size", "5", "--spike-at", "soon"], "--spike-at"),
        (["--horizon-hours", "0"], "--horizon-hours"),
        (["--as-of", "later"], "--as-of"),
    ],
)
def test_what_if_bad_flags_exit_2_naming_the_flag(app, files, extra, needle) -> None:  # type: ignore[no-untyped-def]
    res = runner.invoke(
        app,
        ["what-if", "--metrics", str(files[0]), "--policy", str(files[1]), "--queue", "q", *extra],
    )
    assert res.exit_code == 2, res.output
    assert needle in res.output


def test_progress_bar_is_fed_by_the_replay_to_100_percent() -> None:
    import io

    from rich.console import Console

    from capplan_core.backtest import run_backtest

    out = io.StringIO()
    term = Console(file=out, force_terminal=True, width=100)
    shares: list[float] = []
    frame = rows(3, constant(10.0))
    pol = policy()
    with backtest.progress_bar(term, "q") as tick:

        def spy(strategy: str, share: float) -> None:
            shares.append(share)
            tick(strategy, share)

        run_backtest(
            frame,
            pol,
            start=T0 + pd.Timedelta(days=2),
            end=T0 + pd.Timedelta(days=2, hours=2),
            progress=spy,
        )
    assert shares == sorted(shares) and shares[-1] == pytest.approx(1.0)
    text = out.getvalue()
    assert "backtest q: rate_oracle" in text and "100%" in text  # the last strategy


def test_progress_bar_is_hidden_when_stderr_is_not_a_terminal(app, files) -> None:  # type: ignore[no-untyped-def]
    t1 = (T0 + pd.Timedelta(days=2)).isoformat()
    t2 = (T0 + pd.Timedelta(days=2, hours=1)).isoformat()
    res = runner.invoke(app, _args(files, "--queue", "q", "--from", t1, "--to", t2, "--json"))
    assert res.exit_code == 0, res.output
    assert "backtest q" not in res.stderr
    json.loads(res.stdout)


def test_a_shared_pool_is_backtested_on_every_queue_it_serves(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The demo's `notifications` pool over its morning batch: one row per strategy with
    each queue's attainment of its own SLO, and the picture (the JSON per queue:
    test_shared_backtest.py)."""
    root = Path(__file__).resolve().parents[3]
    args = [
        "backtest", "--metrics", str(root / "data/demo/metrics.csv.gz"),
        "--policy", str(root / "data/demo/policies.yaml"), "--policies", "notifications",
        "--from", "2026-11-20T04:00:00Z", "--to", "2026-11-20T09:00:00Z",
    ]  # fmt: skip
    res = runner.invoke(app, [*args, "--figure", str(tmp_path / "pool.png")])
    assert res.exit_code == 0, res.output
    assert "backtest of shared pool notifications (notify-push then notify-digest" in res.output
    assert "notify-push met" in res.output and "notify-digest met" in res.output
    assert (tmp_path / "pool.png").stat().st_size > 10_000
    oracle = next(line for line in res.output.splitlines() if "│ oracle" in line)
    assert oracle.count("100.0%") == 3 and "1.00" in oracle  # pool, push, digest; x oracle
