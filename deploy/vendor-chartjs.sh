#!/usr/bin/env bash
# Refresh the vendored Chart.js from npm (the dashboard fetches nothing from a CDN at run time).
# Usage: deploy/vendor-chartjs.sh [version]   — needs npm; the result is committed.
set -euo pipefail
version="${1:-4.6.1}"
dest="$(cd "$(dirname "$0")/.." && pwd)/pipeline/web/static/vendor/chart.js"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "chart.js@${version}" >/dev/null && tar xzf chart.js-*.tgz)
mkdir -p "$dest"
cp "$work/package/dist/chart.umd.min.js" "$work/package/LICENSE.md" "$dest/"
echo "chart.js ${version} from npm (MIT, see LICENSE.md)" > "$dest/VERSION"
