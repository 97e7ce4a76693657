set -euo pipefail
grep -q '^adm:x:4:' "$ROOT/etc/group"
