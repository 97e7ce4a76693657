set -euo pipefail
# no package lists: apt cannot locate anything until `apt-get update`
find "$ROOT/var/lib/apt/lists" -maxdepth 1 -type f -name '*_*' -delete
