#!/usr/bin/env bash
# Drive the real app in a real terminal (tmux): open it, launch a tiny run from
# the launch screen, watch it train, stop it, quit. Fails on the first step
# whose screen does not show what it should. CI runs it after the tests.
set -euo pipefail
RNNLAB=${RNNLAB:-rnnlab}
work=$(mktemp -d)
session="rnnlab-smoke-$$"
cleanup() { tmux kill-session -t "$session" 2>/dev/null || true; pkill -f "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/presets" "$work/runs"
printf 'the quick brown fox jumps over the lazy dog. %.0s' $(seq 200) > "$work/corpus.txt"
cat > "$work/presets/tiny.toml" <<TOML
name = "smoke"
device = "cpu"
[model]
arch = "gru"
hidden = 32
layers = 1
[task]
corpus = "$work/corpus.txt"
seq_len = 32
[train]
steps = 100000
batch_size = 8
eval_every = 50
checkpoint_every = 50
TOML

screen() { tmux capture-pane -t "$session" -p; }
wait_for() {  # wait_for TEXT SECONDS: until the screen shows TEXT
  local deadline=$((SECONDS + $2))
  until screen | grep -qF -- "$1"; do
    if (( SECONDS > deadline )); then echo "tui_smoke: never saw '$1'; the screen was:"; screen; exit 1; fi
    sleep 0.3
  done
  echo "tui_smoke: saw '$1'"
}

tmux new-session -d -s "$session" -x 100 -y 30 \
  "$RNNLAB tui --runs-dir '$work/runs' --experiments '$work/presets'; sleep 30"
wait_for "to start one" 30                  # the empty runs browser
tmux send-keys -t "$session" n
wait_for "tiny" 15                          # the launch screen lists the preset
tmux send-keys -t "$session" C-l
wait_for "running" 60                       # the live screen of the new run
sleep 4
steps_seen=$(ls "$work/runs"/*/events.jsonl >/dev/null && grep -c '"kind":"train"' "$work/runs"/*/events.jsonl)
(( steps_seen > 0 )) || { echo "tui_smoke: no training steps"; exit 1; }
tmux send-keys -t "$session" s
wait_for "stopped" 60
tmux send-keys -t "$session" Escape
wait_for "smoke" 15                         # back in the browser, the run is listed
tmux send-keys -t "$session" C-q
sleep 1
grep -q '"state": "stopped"' "$work/runs"/*/status.json
echo "tui_smoke: ok ($steps_seen training steps seen, run stopped cleanly)"
