#!/usr/bin/env bash
# A first look at mlos: a small need graph in ./demo, compiled to markdown views.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mlos() { echo "\$ mlos $*" >&2; node "$root/bin/mlos.js" "$@"; }
rm -rf "$root/demo" && mkdir -p "$root/demo" && cd "$root/demo"

mlos init
kernel=$(mlos need add "The kernel must be testable across session boundaries" \
  --tags kernel,architecture --priority 1 --scope Sprint_X \
  --acceptance "a session-boundary test of the boot sequence passes")
boot=$(mlos need add "Write a session-boundary test for the kernel boot sequence" \
  --tags kernel --scope Sprint_X --depends-on "$kernel")
packs=$(mlos need add "Context packs must never exceed their token budget" \
  --tags context,compilation --priority 0 --scope Sprint_X)
mlos need add "Tag every untagged need" --tags cleanup --priority 3 >/dev/null
mlos link "$boot" depends_on "$packs"
mlos need resolve "$packs" --reason "property test added"
mlos need list
mlos compile
mlos audit verify
echo
echo "── demo/views/PROBLEM.md"
cat views/PROBLEM.md
echo
echo "The database is demo/mlos.db; the compiled views are in demo/views/."
