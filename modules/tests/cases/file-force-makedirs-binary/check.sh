set -euo pipefail
e="$ROOT/etc"
[ -f "$e/cfgm-was-dir" ] && [ "$(cat "$e/cfgm-was-dir")" = "now a file" ]
[ "$(cat "$e/.cfgm-was-dir.cfgm-replaced/sub/inner")" = inner ]
[ -f "$e/cfgm-was-link" ] && [ ! -L "$e/cfgm-was-link" ]
[ "$(readlink "$e/.cfgm-was-link.cfgm-replaced")" = /etc/cfgm-target ]
[ "$(cat "$e/cfgm-target")" = target ]
[ "$(cat "$e/cfgm-deep/a/b/c.conf")" = deep ]
[ "$(stat -c %a "$e/cfgm-deep/a")" = 755 ]
cmp "$e/cfgm-blob" tree/files/blob.bin
[ "$(stat -c %a "$e/cfgm-blob")" = 600 ]
printf '\x89PNG\r\n\x1a\n\x00\x00' | cmp - "$e/cfgm-inline.png"
