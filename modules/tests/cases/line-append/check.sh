set -euo pipefail
printf 'Port 22\nPermitRootLogin yes\nBanner /etc/issue.net\n' | cmp - "$ROOT/etc/cfgm-sshd.conf"
