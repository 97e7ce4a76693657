set -euo pipefail
for f in cfgm-bad cfgm-good cfgm-mode; do
  printf '%%admin ALL=(ALL) ALL\n' > "$ROOT/etc/sudoers.d/$f"
done
chmod 0440 "$ROOT/etc/sudoers.d/cfgm-bad" "$ROOT/etc/sudoers.d/cfgm-good"
chmod 0644 "$ROOT/etc/sudoers.d/cfgm-mode"
touch -d '2020-01-01 00:00' "$ROOT/etc/sudoers.d/cfgm-bad"
