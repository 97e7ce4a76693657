set -euo pipefail
mkdir -p "$ROOT/srv/old/deep"
echo x > "$ROOT/srv/old/deep/x"
