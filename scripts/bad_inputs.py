"""The reliability matrix's bad command lines: each one line `error: ...`, exit 2, nothing written.

`{run}` is a finished character model, `{s2s}` a finished seq2seq run, `{live}` a run whose
trainer is alive, `{dir}` a folder that is not a run, `{file}` a text file, `{empty}` an empty file.
Every command gets `--runs-dir` (the fixtures' runs directory), except those marked `bare`.
"""

from __future__ import annotations

import torch

QUICKSTART = "experiments/quickstart.toml"
S2S_PRESET = "experiments/seq2seq-reverse.toml"

# (what, command words, the text the message must contain or None)
BAD = [
    # experiment files and --set
    ("config file missing", ["run", "nope.toml"], "nope.toml"),
    ("config file not TOML", ["run", "{file}"], None),
    ("config file a folder", ["run", "{dir}"], None),
    ("hidden zero", ["run", "--set", "model.hidden=0"], "model.hidden"),
    ("hidden negative", ["run", "--set", "model.hidden=-3"], "model.hidden"),
    ("hidden not a number", ["run", "--set", "model.hidden=abc"], "model.hidden"),
    ("hidden empty", ["run", "--set", "model.hidden="], "model.hidden"),
    ("unknown arch", ["run", "--set", "model.arch=bogus"], "model.arch"),
    ("unknown task", ["run", "--set", "task.name=bogus"], "task.name"),
    ("lr negative", ["run", "--set", "train.lr=-1"], "train.lr"),
    ("lr nan", ["run", "--set", "train.lr=nan"], "train.lr"),
    ("unknown optimizer", ["run", "--set", "train.optimizer=bogus"], "train.optimizer"),
    ("unknown clip mode", ["run", "--set", "train.clip_mode=bogus"], "train.clip_mode"),
    ("unknown algorithm", ["run", "--set", "train.algorithm=bogus"], "train.algorithm"),
    ("unknown section", ["run", "--set", "nosuch.key=1"], "nosuch"),
    ("unknown key", ["run", "--set", "model.nosuchkey=1"], "nosuchkey"),
    ("override without =", ["run", "--set", "noequals"], "noequals"),
    ("override without a key", ["run", "--set", "=5"], None),
    ("steps zero", ["run", "--set", "train.steps=0"], "train.steps"),
    ("batch size zero", ["run", "--set", "train.batch_size=0"], "train.batch_size"),
    ("eval_every negative", ["run", "--set", "train.eval_every=-1"], "train.eval_every"),
    ("dropout above one", ["run", "--set", "model.dropout=1.5"], "model.dropout"),
    ("seed not a number", ["run", "--set", "seed=abc"], "seed"),
    ("unknown device", ["run", "--set", "device=tpu"], "device"),
    ("seq_len zero", ["run", "--set", "task.seq_len=0"], "task.seq_len"),
    ("corpus missing", ["run", "--set", "task.corpus=/nonexistent/book.txt"], "task.corpus"),
    ("corpus a folder", ["run", "--set", "task.corpus={dir}"], "task.corpus"),
    ("corpus empty", ["run", "--set", "task.corpus={empty}"], "task.corpus"),
    ("tbptt on independent sequences", ["run", "--set", "task.name=copy", "--set", "train.algorithm=tbptt"],
     "train.algorithm"),
    ("bidirectional model on a language model", ["run", "--set", "model.arch=birnn"], "model.arch"),
    ("ekf on a 22k-parameter lstm", ["run", QUICKSTART, "--set", "train.algorithm=ekf"], "ekf"),
    ("rtrl on a 22k-parameter lstm", ["run", QUICKSTART, "--set", "train.algorithm=rtrl"], "rtrl"),
    ("lstm on a seq2seq preset", ["run", S2S_PRESET, "--set", "model.arch=lstm"], "model.arch"),
    ("config and --resume", ["run", QUICKSTART, "--resume", "{run}"], None),
    ("resume a missing run", ["run", "--resume", "nosuchrun"], "nosuchrun"),
    ("resume changing the model", ["run", "--resume", "{run}", "--set", "model.hidden=64"], "model.hidden"),
    ("resume a finished run without more steps", ["run", "--resume", "{run}"], "train.steps"),
    ("resume a live run", ["run", "--resume", "{live}", "--set", "train.steps=100"], "running"),
    ("config: a bad value", ["config", "--set", "model.hidden=0"], "model.hidden"),
    ("config: a missing file", ["config", "nope.toml"], "nope.toml"),
    # sample
    ("sample a missing run", ["sample", "nosuchrun"], "nosuchrun"),
    ("sample --length 0", ["sample", "{run}", "--length", "0"], "--length"),
    ("sample --length -5", ["sample", "{run}", "--length", "-5"], "--length"),
    ("sample --length abc", ["sample", "{run}", "--length", "abc"], "--length"),
    ("sample --temperature -1", ["sample", "{run}", "--temperature", "-1"], "--temperature"),
    ("sample --top-k -1", ["sample", "{run}", "--top-k", "-1"], "--top-k"),
    ("sample --top-k 0", ["sample", "{run}", "--top-k", "0"], "--top-k"),
    ("sample --top-p 0", ["sample", "{run}", "--top-p", "0"], "top"),
    ("sample --top-p 1.5", ["sample", "{run}", "--top-p", "1.5"], "top"),
    ("sample --beam 0", ["sample", "{run}", "--beam", "0"], "--beam"),
    ("sample --checkpoint middle", ["sample", "{run}", "--checkpoint", "middle"], "--checkpoint"),
    ("sample a prompt of unknown characters", ["sample", "{run}", "--prompt", "λ€"], None),
    ("sample --device bogus", ["sample", "{run}", "--device", "bogus"], "bogus"),
    ("sample a seq2seq run", ["sample", "{s2s}"], "translate"),
    ("sample an unknown option", ["sample", "{run}", "--bogus"], "--bogus"),
    ("sample without RUN", ["sample"], "RUN"),
    # translate, caption, activations
    ("translate a language model", ["translate", "{run}", "abc"], None),
    ("translate without INPUT", ["translate", "{s2s}"], "INPUT"),
    ("translate --beam 0", ["translate", "{s2s}", "1 2 3", "--beam", "0"], "--beam"),
    ("translate unknown symbols", ["translate", "{s2s}", "xyz!"], None),
    ("caption a language model", ["caption", "{run}"], "captioning"),
    ("caption a seq2seq run", ["caption", "{s2s}"], "captioning"),
    ("caption --index -1", ["caption", "{run}", "--index", "-1"], "--index"),
    ("caption --score 0", ["caption", "{run}", "--score", "0"], "--score"),
    ("activations --unit too large", ["activations", "{run}", "--unit", "99999"], "--unit"),
    ("activations --layer too large", ["activations", "{run}", "--layer", "5"], "--layer"),
    ("activations --cell on a gru", ["activations", "{run}", "--cell"], "--cell"),
    # runs, list, the app
    ("runs ls --state bogus", ["runs", "ls", "--state", "bogus"], "--state"),
    ("runs show a missing run", ["runs", "show", "nosuchrun"], "nosuchrun"),
    ("runs show an empty RUN", ["runs", "show", ""], None),
    ("runs show a folder that is not a run", ["runs", "show", "{dir}"], None),
    ("runs rm a missing run", ["runs", "rm", "nosuchrun", "--yes"], "nosuchrun"),
    ("runs rm a live run", ["runs", "rm", "{live}", "--yes"], "running"),
    ("runs rm an ambiguous prefix", ["runs", "rm", "2", "--yes"], None),
    ("list bogus", ["list", "bogus"], "bogus"),
    ("an unknown command", ["bogus"], "bogus"),
    ("run an unknown option", ["run", "--bogus"], "--bogus"),
    ("tui a missing run", ["tui", "nosuchrun"], "nosuchrun"),
    ("tui --experiments not a folder", ["tui", "--experiments", "/nonexistent"], "--experiments"),
    ("--runs-dir is a file", ["runs", "ls"], None),  # runs dir replaced below
]
BARE = {"an unknown command", "list bogus", "config: a bad value", "config: a missing file"}  # no runs dir to give
if torch.cuda.is_available():  # a device check that only a CPU machine can make
    BAD.remove(("unknown device", ["run", "--set", "device=tpu"], "device"))


def run_all(m, fx) -> None:
    from reliability import fingerprint

    if m.only and not any(m.only in f"bad input: {what}" for what, _, _ in BAD):
        return
    scratch = m.fresh_runs("bad-input-files")
    (scratch / "folder").mkdir()
    (scratch / "text.txt").write_text("this is not [toml\n")
    (scratch / "empty.txt").write_text("")
    fill = {"run": fx.base.name, "s2s": fx.s2s.name, "live": fx.live.name, "dir": str(scratch / "folder"),
            "file": str(scratch / "text.txt"), "empty": str(scratch / "empty.txt")}
    before = fingerprint(fx.runs)
    for what, words, mentions in BAD:
        args = [word.format(**fill) for word in words]
        runs_dir = str(scratch / "text.txt") if what == "--runs-dir is a file" else str(fx.runs)
        if what not in BARE:
            args += ["--runs-dir", runs_dir]
        m.case(f"bad input: {what}", lambda m_: m_.clean_error(f"bad input: {what}", m_.cli(*args), 2, mentions))
        after = fingerprint(fx.runs)
        m.check(f"bad input: {what}: nothing written", after == before,
                f"changed: {sorted(set(after.items()) ^ set(before.items()))[:3]}")
        before = after
    m.check("bad inputs: at least 60", len(BAD) >= 60, f"{len(BAD)}")
    # the in-process entry point must behave as the real console script does
    for what, words, mentions in BAD[:: max(1, len(BAD) // 4)]:
        args = [word.format(**fill) for word in words] + ([] if what in BARE else ["--runs-dir", str(fx.runs)])
        m.clean_error(f"bad input through the console script: {what}", m.rnnlab(*args), 2, mentions)
