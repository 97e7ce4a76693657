set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
! systemctl is-active --quiet cfgm-dummy || exit 1
[ "$(systemctl is-enabled cfgm-dummy)" = masked ]
! systemctl start cfgm-dummy 2>/dev/null || exit 1
systemctl is-active --quiet cfgm-other
[ "$(systemctl is-enabled cfgm-other)" = disabled ]
