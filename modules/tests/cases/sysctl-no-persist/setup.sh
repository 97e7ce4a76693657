set -euo pipefail
echo 'net.core.somaxconn = 999' > "$ROOT/etc/sysctl.d/90-cfgm-net.core.somaxconn.conf"
