set -euo pipefail
[ "$(cat "$ROOT/etc/sysctl.d/90-cfgm-vm.swappiness.conf")" = "vm.swappiness = 10" ]
[ ! -e "$ROOT/proc/sys/vm" ]
