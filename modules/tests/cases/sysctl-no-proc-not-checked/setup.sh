set -euo pipefail
echo 'vm.overcommit_memory = 1' > "$ROOT/etc/sysctl.d/90-cfgm-vm.overcommit_memory.conf"
