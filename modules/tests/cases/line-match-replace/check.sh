set -euo pipefail
printf 'Port 22\nPermitRootLogin no\nPermitRootLogin yes\n' | cmp - "$ROOT/etc/cfgm-sshd.conf"
[ "$(chroot "$ROOT" stat -c '%a %U %G' "/etc/cfgm-sshd.conf")" = "640 daemon adm" ]
