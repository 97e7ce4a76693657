set -euo pipefail
printf 'Port 22\nPermitRootLogin yes' > "$ROOT/etc/cfgm-sshd.conf"
