"""Study files, `rnnlab reproduce` end to end on a tiny study, and the report's structure."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app
from rnnlab.errors import ConfigError
from rnnlab.studies import report, runner, spec

from study_fixtures import FAILING, PASSING, study_text

runner_cli = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def invoke(*args):
    return runner_cli.invoke(app, [str(a) for a in args])


def write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shipped_study_loads_and_has_both_sizes():
    studies = spec.load_all()
    assert studies, "experiments/studies/ holds no study"
    for study in studies:
        assert study.claim and study.watch and study.anchor and study.checks
        for size in spec.SIZES:
            assert study.sweep_table(size)


@pytest.mark.parametrize("edit, key", [
    (lambda t: t.replace("[study]", "[studies]"), "study"),
    (lambda t: t.replace('claim = "A wider tiny net fits the tiny corpus no worse."\n', ""), "study.claim"),
    (lambda t: t.replace('anchor = "none: a test"', 'anchor = "x"\nauthor = "me"'), "study.author"),
    (lambda t: t.replace("number = 1", 'number = "one"'), "study.number"),
    (lambda t: t.replace('[quick]\nset = ["train.steps=4"]', ""), "quick"),
    (lambda t: t.replace('set = ["train.steps=4"]', 'set = "train.steps=4"'), "quick.set"),
    (lambda t: t.replace('[full]\nset = ["train.steps=40"]', '[full]\nsets = ["train.steps=40"]'), "full.sets"),
    (lambda t: t.replace('"model.hidden" = [8, 16]', '"model.hidden" = [8, 0]'), "model.hidden"),
    (lambda t: t.replace("[sweep]\n", "[sweeps]\n"), "sweep"),
    (lambda t: t.replace("[train]\n", "[trian]\n"), "trian"),
    (lambda t: t.replace("[[check]]", "[[checks]]"), "checks"),
    (lambda t: t.replace('metric = "loss"', 'metric = "loss@x"'), "check[0].metric"),
    (lambda t: t.replace('kind = "threshold"', 'kind = "thresh"'), "check[0].kind"),
    (lambda t: t.replace('anchor = "none: a test"', 'anchor = "x"\nbase = "nowhere.toml"'), "study.base"),
])
def test_a_bad_study_file_is_one_config_error_naming_the_key(tmp_path, edit, key):
    path = write(tmp_path, "bad", edit(study_text(tmp_path, PASSING)))
    with pytest.raises(ConfigError) as error:
        spec.load(path)
    assert error.value.key == key, str(error.value)
    result = invoke("reproduce", path, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert not (tmp_path / "runs" / "sweeps").exists()  # nothing written before the file is good


def test_a_study_with_a_base_merges_its_tables_over_the_preset(tmp_path):
    base = tmp_path / "base.toml"
    body = study_text(tmp_path, "").split("[model]")[1].split("[sweep]")[0]  # the tiny config's tables
    base.write_text("[model]" + body.replace("hidden = 16\nlayers = 1", "hidden = 12\nlayers = 2"), encoding="utf-8")
    text = study_text(tmp_path, PASSING, head='base = "../base.toml"').replace("layers = 1\n", "")
    study = spec.load(write(tmp_path, "based", text))
    assert study.config["model"] == {"hidden": 16, "layers": 2, "embed": 8}  # the study's hidden, the base's layers


def test_reproduce_runs_resumes_reports_and_lists(tmp_path):
    runs = tmp_path / "runs"
    write(tmp_path, "tiny-fail", study_text(tmp_path, PASSING + FAILING))
    folder = tmp_path / "studies"
    result = invoke("reproduce", "tiny-fail", "--studies", folder, "--workers", 1, "--runs-dir", runs)
    assert result.exit_code == 1, result.output
    assert "verdict: not reproduced" in result.output and "tiny loss" in result.output
    home = store.StudyDir(runs, "tiny-fail", "quick")
    record, saved = home.read_record(), home.read_result()
    assert saved["verdict"] == "not reproduced" and saved["sweep"] == record["sweep"]
    assert [c["outcome"] for c in saved["checks"]] == ["pass", "fail"]
    assert saved["metrics"] == ["bpc"] and "what the checks read" in result.output
    bpc = {r["point"]["model.hidden"]: r["metrics"]["bpc"]["mean"] for r in saved["by_metric"]}
    loss = {p["point"]["model.hidden"]: p["mean"] for p in saved["points"]}
    assert bpc[16] == pytest.approx(loss[16] / math.log(2), rel=1e-3)  # bits per char: the loss in nats / ln 2
    assert saved["checks"][1]["measured"] == pytest.approx(bpc[16])
    assert len(saved["points"]) == 2 and all(p["n"] == 1 for p in saved["points"])
    trial_steps = {json.dumps(t["overrides"]) for t in store.find_sweep(runs, record["sweep"]).read()["trials"]}
    assert all("train.steps=4" in t for t in trial_steps)  # the quick size's --set reached every trial

    again = invoke("reproduce", "tiny-fail", "--studies", folder, "--runs-dir", runs)
    assert again.exit_code == 1 and "all 2 trials done" in again.output
    assert home.read_record()["sweep"] == record["sweep"]  # the same sweep, nothing rerun
    assert len(store.list_sweeps(runs)) == 1

    listing = invoke("reproduce", "--list", "--studies", folder, "--runs-dir", runs)
    assert listing.exit_code == 0 and "not reproduced" in listing.output and "tiny-fail" in listing.output

    out = tmp_path / "RESULTS.md"
    made = invoke("reproduce", "--all", "--report", out, "--studies", folder, "--runs-dir", runs)
    assert made.exit_code == 0, made.output
    text = out.read_text()
    assert "**Verdict: not reproduced.**" in text and "`rnnlab reproduce tiny-fail --quick`" in text
    assert "### full\n\nCommand: `rnnlab reproduce tiny-fail --full`\n\nNot run yet." in text


def test_an_edited_study_starts_a_new_sweep(tmp_path):
    folder = tmp_path / "studies"
    path = write(tmp_path, "tiny", study_text(tmp_path, PASSING))
    study = spec.load(path)
    runs = tmp_path / "runs"
    first, how = runner.plan(study, "quick", runs)
    assert how == "new"
    again, how = runner.plan(study, "quick", runs)
    assert how == "resumed" and again.sweep.id == first.sweep.id  # nothing ran yet: every trial still to run
    write(tmp_path, "tiny", study_text(tmp_path, PASSING).replace('["train.steps=4"]', '["train.steps=5"]'))
    edited, how = runner.plan(spec.find("tiny", folder), "quick", runs)
    assert how == "new" and edited.sweep.id != first.sweep.id


def test_results_md_has_a_section_per_study_in_order():
    """docs/RESULTS.md follows the studies (names, numbers, sizes, commands), whatever its numbers."""
    studies = spec.load_all()
    text = (ROOT / "docs" / "RESULTS.md").read_text(encoding="utf-8")
    assert text.startswith(report.TITLE)
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == ["Summary"] + [report.heading(s) for s in studies]
    for study in studies:
        body = text.split(f"## {report.heading(study)}\n", 1)[1].split("\n## ", 1)[0]
        assert f"**Claim.** {study.claim}" in body
        for size in spec.SIZES:
            assert f"### {size}\n\nCommand: `{study.command(size)}`" in body


def test_the_report_shows_saved_results_literally_and_says_what_never_ran(tmp_path):
    from study_fixtures import saved_result

    study = spec.load(write(tmp_path, "tiny", study_text(tmp_path, PASSING)))
    runs = tmp_path / "runs"
    result = saved_result(runs, "tiny", "quick")
    result["checks"][0]["label"] = "a|b\x1b[2J"
    store.StudyDir(runs, "tiny", "quick").write_result(result)
    text = report.render([study], runs)
    assert "| 1 | [tiny](#1-tiny) |" in text and "| not reproduced | not run |" in text
    assert "| model.hidden | loss (min) | bpc | n | states |" in text
    assert "| 16 | 2.9 ± 0 | 4.18 ± 0 | 1 | finished 1 |" in text
    assert "a\\|b\\x1b[2J" in text and "\x1b" not in text
    assert "on fixture-host (2 CPUs" in text and "### full\n\nCommand: `rnnlab reproduce tiny --full`\n\nNot run yet." in text


def test_the_report_keeps_what_it_shows_beside_itself_until_its_study_changes(tmp_path):
    from study_fixtures import saved_result

    path = write(tmp_path, "tiny", study_text(tmp_path, PASSING))
    study = spec.load(path)
    runs, docs = tmp_path / "runs", tmp_path / "docs"
    result = saved_result(runs, "tiny", "quick", verdict="reproduced")
    store.StudyDir(runs, "tiny", "quick").write_result({**result, "fingerprint": runner.result_fingerprint(study, "quick")})
    report.write_report(docs / "RESULTS.md", [study], runs)
    kept = json.loads((docs / "results" / "tiny-quick.json").read_text())
    assert kept["verdict"] == "reproduced" and not (docs / "results" / "tiny-full.json").exists()
    # another machine, no runs of its own: the report still shows the kept result
    report.write_report(docs / "RESULTS.md", [study], tmp_path / "elsewhere")
    assert "| reproduced | not run |" in (docs / "RESULTS.md").read_text()
    # the study's check changes: the kept result no longer answers it, nor does this machine's own
    path.write_text(path.read_text().replace("value = 100.0", "value = 50.0"), encoding="utf-8")
    changed = spec.load(path)
    for runs_dir in (tmp_path / "elsewhere", runs):
        text = report.render([changed], runs_dir, docs / "results")
        assert "| not run | not run |" in text and "### quick\n\nCommand: `rnnlab reproduce tiny --quick`\n\nNot run yet." in text
    # a kept result without a fingerprint (it cannot be checked) is never shown
    (docs / "results" / "tiny-quick.json").write_text(json.dumps(result))
    assert "| not run | not run |" in report.render([study], tmp_path / "elsewhere", docs / "results")


@pytest.mark.parametrize("args, key", [((), "NAME"), (("x", "--quick", "--full"), "--full"),
                                       (("no-such-study",), "study"), (("x", "--backend", "slurm"), "--backend")])
def test_bad_reproduce_command_lines_are_one_line_errors(tmp_path, args, key):
    write(tmp_path, "x", study_text(tmp_path, PASSING))
    result = invoke("reproduce", *args, "--studies", tmp_path / "studies", "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and result.output.startswith(f"error: {key}") and result.output.count("\n") == 1


def test_list_falls_back_to_the_kept_results_while_they_are_current(tmp_path, monkeypatch):
    """A fresh checkout has no runs/: --list (and the TUI, through the same shown_result) show the verdicts
    docs/RESULTS.md keeps in docs/results/, until the study file changes."""
    path = write(tmp_path, "tiny-kept", study_text(tmp_path, PASSING))
    study = spec.load(path)
    kept = tmp_path / report.DEFAULT_ARCHIVE
    kept.mkdir(parents=True)
    result = {"verdict": "reproduced", "fingerprint": runner.result_fingerprint(study, "quick")}
    report.archive_path(kept, study, "quick").write_text(json.dumps(result), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the archive is read from the project root, as experiments/studies is
    runs = tmp_path / "runs"
    assert report.shown_result(study, "quick", runs, report.DEFAULT_ARCHIVE) == (result, True)
    assert report.shown_result(study, "full", runs, report.DEFAULT_ARCHIVE) == (None, False)
    listing = invoke("reproduce", "--list", "--studies", path.parent, "--runs-dir", runs)
    assert listing.exit_code == 0 and "reproduced" in listing.output, listing.output

    write(tmp_path, "tiny-kept", study_text(tmp_path, PASSING).replace('["train.steps=4"]', '["train.steps=5"]'))
    assert report.shown_result(spec.load(path), "quick", runs, report.DEFAULT_ARCHIVE) == (None, False)  # stale
    listing = invoke("reproduce", "--list", "--studies", path.parent, "--runs-dir", runs)
    assert listing.exit_code == 0 and "reproduced" not in listing.output, listing.output
