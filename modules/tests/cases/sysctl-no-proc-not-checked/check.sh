set -euo pipefail
[ ! -e "$ROOT/etc/sysctl.d/90-cfgm-vm.swappiness.conf" ]
[ ! -e "$ROOT/etc/sysctl.d/90-cfgm-net.core.nosuchkey.conf" ]
[ ! -e "$ROOT/etc/sysctl.d/90-cfgm-vm.overcommit_memory.conf" ]
[ ! -e "$ROOT/proc/sys/vm" ]
