set -euo pipefail
printf 'Port 22\n#PermitRootLogin yes\nPermitRootLogin yes\n' > "$ROOT/etc/cfgm-sshd.conf"
chmod 0640 "$ROOT/etc/cfgm-sshd.conf"
chown daemon:adm "$ROOT/etc/cfgm-sshd.conf"
