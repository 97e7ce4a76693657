set -euo pipefail
# an older jq than the candidate (bookworm's, where bookworm-security has a newer one)
old=$(chroot "$ROOT" apt-cache madison jq | awk -F'|' '{gsub(/ /, "", $2); print $2}' | tail -1)
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "jq=$old" "libjq1=$old" > /dev/null
echo "$old" > "$OUTSIDE/jq-old"
