set -euo pipefail
for u in cfgm-mover cfgm-stayer; do
  chroot "$ROOT" useradd --create-home --user-group "$u"
  echo "notes of $u" > "$ROOT/home/$u/notes"
done
