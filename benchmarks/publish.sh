#!/usr/bin/env bash
# Build the asv history over a commit range, publish the dashboard, and make it
# render with no internet access. See benchmarks/README.md.
#
#   benchmarks/publish.sh [--fast] [--retry-failed] [--existing PYTHON] [RANGE] [-- ASV_RUN_ARG...]
#
# RANGE      a git range as `asv run` takes it (default: main~3..main, the last
#            3 commits on main; `main^!` is one commit, `ALL`, `NEW` also work).
#            With --existing: the one commit the results are saved under (default HEAD).
# -- ARG...  everything after `--` goes to `asv run` as it is, after the options
#            publish.sh sets, e.g. `-- -b 'BookSuite|L2Suite'` (only these benchmarks),
#            `-- -a repeat=5`, `-- --durations 5`. Name the commit of an --existing
#            run as RANGE, not with --set-commit-hash.
# --fast     one sample per benchmark (-a repeat=1 -a rounds=1 -a warmup_time=0)
#            for a quick look on a small machine; `asv run --quick` would save nothing.
#            Fast results are kept apart: saved in <results_dir>-fast and published to
#            <html_dir>-fast with regression detection off, since one sample per commit
#            is noise, not a regression. They never mix with full runs.
# --retry-failed
#            also re-run benchmarks whose saved result is a failure.
# --existing benchmark the obelisk already installed in PYTHON instead of building
#            each commit, and save the results under one commit: HEAD, the checked-out
#            commit, unless RANGE names another (say, PYTHON has that commit installed).
#
# Only what is missing is run: per commit, machine and environment, a benchmark
# that already has a result (a timing or a failure; with --retry-failed, a timing)
# is skipped (`asv run --skip-existing`), so a commit whose run was interrupted or
# ran only a selection (`-- -b ...`) gets the rest on the next call. A commit that
# has every result is neither built nor run again.
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
# Afterwards: the dashboard is in html_dir (.asv/html; .asv/html-fast with --fast).
# Browsers block the page's requests for its JSON data from file:// URLs, so serve
# it locally, still with no internet: `python3 -m http.server -d .asv/html 8080`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

fast=()
skip=--skip-existing
existing=""
range=""
asv_args=()
while (($#)); do
    case "$1" in
        --fast) fast=(-a repeat=1 -a rounds=1 -a warmup_time=0); shift ;;
        --retry-failed) skip=--skip-existing-successful; shift ;;
        --existing) existing=${2:?--existing needs a python}; shift 2 ;;
        -h|--help) sed -n '2,43p' "$0"; exit 0 ;;
        --) shift; asv_args=("$@"); break ;;
        -*) echo "publish.sh: unknown option $1 (asv run options go after --)" >&2; exit 2 ;;
        *) [[ -z "$range" ]] || { echo "publish.sh: two ranges: $range $1" >&2; exit 2; }
           range=$1; shift ;;
    esac
done

asv=${ASV:-asv}
config=${ASV_CONFIG:-$root/asv.conf.json}
machine=${ASV_MACHINE:-$(hostname)}
asv_bin=$(command -v "$asv") || { echo "publish.sh: $asv not found (pip install -e '.[bench]')" >&2; exit 2; }
tools_python=${PYTHON_FOR_TOOLS:-$(head -n 1 "$asv_bin" | sed -e 's/^#! *//' -e 's/ .*//')}
"$tools_python" -c "import asv" 2>/dev/null || tools_python=python3

commit=""
if [[ -n "$existing" ]]; then
    rev=${range:-HEAD}
    commit=$(git -C "$root" rev-parse --verify --quiet "$rev^{commit}") \
        || { echo "publish.sh: --existing saves under one commit; $rev is not one" >&2; exit 2; }
else
    range=${range:-main~3..main}
fi

# asv reads paths relative to its config's folder. Write the configs this run uses
# into a temporary folder, with absolute paths:
#   publish.json  the config; with --fast: results_dir and html_dir get `-fast`,
#                 and regressions_first_commits {".*": null} turns detection off.
#   run.json      the same, except that an --existing run lists the target commit as
#                 the only branch: asv looks for a commit's saved results (to skip
#                 them) under the branch heads, not under --set-commit-hash.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
paths=$("$tools_python" - "$config" "$work" "${#fast[@]}" "$commit" <<'PY'
import json, os, sys

path, work, fast, commit = sys.argv[1], sys.argv[2], sys.argv[3] != "0", sys.argv[4]
try:
    from asv.util import load_json
    conf = load_json(path, js_comments=True)
except ImportError:
    import re
    conf = json.loads(re.sub(r"(?m)^\s*//.*$", "", open(path, encoding="utf-8").read()))
base = os.path.dirname(os.path.abspath(path))
defaults = {"benchmark_dir": "benchmarks", "env_dir": "env", "results_dir": "results",
            "html_dir": "html"}
for key, default in defaults.items():
    conf[key] = os.path.normpath(os.path.join(base, conf.get(key, default)))
repo = os.path.join(base, conf.get("repo", "."))
if os.path.isdir(repo):                       # a local checkout, not a URL
    conf["repo"] = os.path.normpath(repo)
if fast:
    conf["results_dir"] += "-fast"
    conf["html_dir"] += "-fast"
    conf["regressions_first_commits"] = {".*": None}
with open(os.path.join(work, "publish.json"), "w", encoding="utf-8") as out:
    json.dump(conf, out, indent=1)
if commit:
    conf["branches"] = [commit]
with open(os.path.join(work, "run.json"), "w", encoding="utf-8") as out:
    json.dump(conf, out, indent=1)
print(conf["html_dir"])
print(conf["results_dir"])
PY
)
html_dir=${paths%%$'\n'*}
results_dir=${paths#*$'\n'}

step() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }

step "machine $machine"
"$asv" --config "$work/publish.json" machine --yes --machine "$machine" >/dev/null

# A commit whose build or benchmarks fail is recorded as failed; keep going so the
# rest is published, and let the offline check below decide the exit.
if [[ -n "$existing" ]]; then
    step "benchmarks of the installed obelisk in $existing, saved as commit ${commit:0:12}"
    "$asv" --config "$work/run.json" run --machine "$machine" -E "existing:$existing" \
        --set-commit-hash "$commit" "$skip" "${fast[@]}" --show-stderr "${asv_args[@]}" \
        || echo "publish.sh: asv run exited $?; publishing what was saved" >&2
else
    step "history over $range (virtualenv matrix; each commit is built once and cached)"
    "$asv" --config "$work/run.json" run --machine "$machine" "$skip" \
        "${fast[@]}" --show-stderr "${asv_args[@]}" "$range" \
        || echo "publish.sh: asv run exited $?; publishing what was saved" >&2
fi

step "asv publish $results_dir to $html_dir"
"$asv" --config "$work/publish.json" publish

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
echo "dashboard: $html_dir/index.html (serve it: python3 -m http.server -d $html_dir)"
