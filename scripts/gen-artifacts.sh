#!/usr/bin/env bash
# Regenerates the committed shell completions (completions/) and man pages (man/) from the
# clap definition. tests/integration/generated.rs fails when they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q
bin=${CARGO_TARGET_DIR:-target}/debug/wtdiag
mkdir -p completions man
$bin completions bash >completions/wtdiag.bash
$bin completions zsh >completions/_wtdiag
$bin completions fish >completions/wtdiag.fish
$bin completions elvish >completions/wtdiag.elv
$bin completions powershell >completions/_wtdiag.ps1
$bin man >man/wtdiag.1
for sub in logs pg live watch; do
  $bin man "$sub" >"man/wtdiag-$sub.1"
done
