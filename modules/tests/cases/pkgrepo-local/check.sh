set -euo pipefail
chroot "$ROOT" dpkg-query -W -f '${Status}\n' cfgm-repo-hello | grep -qx 'install ok installed'
grep -qx 'Signed-By: /etc/apt/keyrings/cfgm-test.gpg' "$ROOT/etc/apt/sources.list.d/cfgm-test.sources"
grep -qx 'URIs: file:/srv/cfgm-repo' "$ROOT/etc/apt/sources.list.d/cfgm-test.sources"
# The key is the binary file from files/, byte for byte.
cmp "$ROOT/etc/apt/keyrings/cfgm-test.gpg" tree/files/cfgm-test-repo.gpg
[ "$(stat -c %a "$ROOT/etc/apt/keyrings/cfgm-test.gpg")" = 644 ]
