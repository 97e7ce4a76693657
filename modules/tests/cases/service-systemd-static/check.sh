set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
systemctl is-active --quiet cfgm-static
[ "$(systemctl is-enabled cfgm-static || true)" = static ]
