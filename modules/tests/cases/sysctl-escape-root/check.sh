set -euo pipefail
[ "$(cat "$ROOT$OUTSIDE/sysctl.d/90-cfgm-vm.swappiness.conf")" = "vm.swappiness = 10" ]
[ ! -e "$ROOT$OUTSIDE/sysctl.d/90-cfgm-vm.dirty_ratio.conf" ]
