set -euo pipefail
printf 'line one\nline two\nline three\n' > "$ROOT/etc/cfgm-motd"
chmod 0600 "$ROOT/etc/cfgm-motd"
