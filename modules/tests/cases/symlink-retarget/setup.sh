set -euo pipefail
ln -s /etc/hosts "$ROOT/etc/cfgm-link"
ln -s /nowhere "$ROOT/etc/cfgm-gone"
