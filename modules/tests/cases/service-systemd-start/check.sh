set -euo pipefail
[ -d /var/lib/cfgm-test/case ] || { echo "not inside the test container" >&2; exit 1; }
systemctl is-active --quiet cfgm-dummy
[ "$(systemctl is-enabled cfgm-dummy)" = enabled ]
[ "$(cat /run/cfgm-dummy.log)" = reloaded ]
