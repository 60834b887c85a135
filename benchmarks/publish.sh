#!/usr/bin/env bash
# Build the asv history over a commit range, publish the dashboard, and make it
# render with no internet access. See benchmarks/README.md.
#
#   benchmarks/publish.sh [--fast] [--existing PYTHON] [RANGE]
#
# RANGE      a git range as `asv run` takes it (default: main~3..main, the last
#            3 commits on main; `main^!` is one commit, `ALL`, `NEW` also work).
# --fast     one sample per benchmark (-a repeat=1 -a rounds=1 -a warmup_time=0)
#            for a quick look on a small machine; `asv run --quick` would save nothing.
# --existing benchmark the obelisk already installed in PYTHON instead of building
#            each commit; it can only stand for the checked-out commit, so RANGE is
#            ignored and the results are saved under `git rev-parse HEAD`.
#
# Environment choice: by default the history is built with the virtualenv matrix
# of asv.conf.json (each commit is built as a wheel from its own checkout and
# installed into .asv/env), because that is the only mode that can benchmark
# commits other than the checked-out one. `existing` and virtualenv results appear
# as separate series on the dashboard, so keep to one mode for a given history.
#
# Environment variables: ASV (the asv command, default `asv`), ASV_CONFIG
# (default asv.conf.json at the repo root), ASV_MACHINE (default: hostname),
# PYTHON_FOR_TOOLS (a python with asv importable; default: asv's own interpreter).
#
# Afterwards: the dashboard is in html_dir (.asv/html). Browsers block the page's
# requests for its JSON data from file:// URLs, so serve it locally, still with
# no internet: `asv preview` or `python3 -m http.server -d .asv/html 8080`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

fast=()
existing=""
range=""
while (($#)); do
    case "$1" in
        --fast) fast=(-a repeat=1 -a rounds=1 -a warmup_time=0); shift ;;
        --existing) existing=${2:?--existing needs a python}; shift 2 ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        -*) echo "publish.sh: unknown option $1" >&2; exit 2 ;;
        *) range=$1; shift ;;
    esac
done
range=${range:-main~3..main}

asv=${ASV:-asv}
config=${ASV_CONFIG:-$root/asv.conf.json}
machine=${ASV_MACHINE:-$(hostname)}
asv_bin=$(command -v "$asv") || { echo "publish.sh: $asv not found (pip install -e '.[bench]')" >&2; exit 2; }
tools_python=${PYTHON_FOR_TOOLS:-$(head -n 1 "$asv_bin" | sed -e 's/^#! *//' -e 's/ .*//')}
"$tools_python" -c "import asv" 2>/dev/null || tools_python=python3

# html_dir as the config says, relative to the config's folder (asv runs there).
html_dir=$("$tools_python" - "$config" <<'PY'
import os, sys
path = sys.argv[1]
try:
    from asv.util import load_json
    conf = load_json(path, js_comments=True)
except ImportError:
    import json, re
    text = open(path, encoding="utf-8").read()
    conf = json.loads(re.sub(r"(?m)^\s*//.*$", "", text))
print(os.path.join(os.path.dirname(os.path.abspath(path)), conf.get("html_dir", "html")))
PY
)

step() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }

step "machine $machine"
"$asv" --config "$config" machine --yes --machine "$machine" >/dev/null

if [[ -n "$existing" ]]; then
    step "benchmarks of the installed obelisk in $existing, saved as the checked-out commit"
    "$asv" --config "$config" run --machine "$machine" -E "existing:$existing" \
        --set-commit-hash "$(git -C "$root" rev-parse HEAD)" "${fast[@]}" --show-stderr
else
    step "history over $range (virtualenv matrix; each commit is built once and cached)"
    # A commit whose build or benchmarks fail is recorded as failed; keep going so the
    # rest of the range is published, and let the offline check below decide the exit.
    "$asv" --config "$config" run --machine "$machine" --skip-existing-commits \
        "${fast[@]}" --show-stderr "$range" || echo "publish.sh: asv run exited $?; publishing what was saved" >&2
fi

step "asv publish to $html_dir"
"$asv" --config "$config" publish

step "vendor the CDN scripts and stylesheets into $html_dir/vendor"
rm -rf "$html_dir/vendor"
cp -R "$here/vendor" "$html_dir/vendor"
rm -f "$html_dir/vendor/vendor.json"
"$tools_python" - "$html_dir" "$here/vendor/vendor.json" <<'PY'
"""Point every CDN <script>/<link> at its copy under vendor/; fail on one not in vendor.json."""
import json, os, re, sys
from pathlib import Path

html_dir, manifest = Path(sys.argv[1]), json.load(open(sys.argv[2], encoding="utf-8"))
local = {entry["url"]: entry["local"] for entry in manifest["files"]}
tag = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE | re.DOTALL)
url_attr = re.compile(r"""\b(src|href)\s*=\s*(["'])((?:https?:)?//[^"']*)\2""", re.IGNORECASE)
dropped = re.compile(r"""\s+(integrity|crossorigin|referrerpolicy)(\s*=\s*(["'])[^"']*\3)?""",
                     re.IGNORECASE)
unknown = []
for page in sorted(html_dir.rglob("*.html")):
    if "vendor" in page.relative_to(html_dir).parts:
        continue
    text = page.read_text(encoding="utf-8")
    prefix = os.path.relpath(html_dir / "vendor", page.parent).replace(os.sep, "/")

    def swap(match):
        element = match.group(0)
        found = url_attr.search(element)
        if not found:
            return element
        if match.group(1).lower() == "link" and "stylesheet" not in element.lower():
            return element                      # e.g. a feed link: not loaded by the page
        url = found.group(3)
        if url not in local:
            unknown.append(f"{page}: {url}")
            return element
        element = url_attr.sub(lambda m: f'{m.group(1)}="{prefix}/{local[url]}"', element, 1)
        return dropped.sub("", element)         # SRI of the minified CDN files, CORS mode

    new = tag.sub(swap, text)
    if new != text:
        page.write_text(new, encoding="utf-8")
        print(f"rewrote {page.relative_to(html_dir)}")
if unknown:
    sys.exit("no local copy in benchmarks/vendor/vendor.json for:\n  " + "\n  ".join(unknown))
PY

step "offline check"
"$tools_python" "$here/check_offline.py" "$html_dir"
echo "dashboard: $html_dir/index.html (serve it: asv preview, or python3 -m http.server -d $html_dir)"
