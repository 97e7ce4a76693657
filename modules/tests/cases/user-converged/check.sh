set -euo pipefail
grep -q '^erin:x:3000:3000:' "$ROOT/etc/passwd"
