set -euo pipefail
source ../../lib/flat-repo.sh
# Two packages only the case's flat repository has: cfgm-good (plain) and
# cfgm-bad, whose postinst fails, so that one apt transaction installs the
# first and leaves the second half-configured.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo="$ROOT/srv/cfgm-repo"
mkdir -p "$repo"
for name in cfgm-good cfgm-bad; do
  pkg="$work/$name"
  mkdir -p "$pkg/DEBIAN" "$pkg/usr/share/$name"
  echo "$name" > "$pkg/usr/share/$name/marker"
  cat > "$pkg/DEBIAN/control" <<CONTROL
Package: $name
Version: 1.0
Architecture: all
Maintainer: cfgm tests <test@cfgm.invalid>
Description: a package only the case's repository has
CONTROL
done
printf '#!/bin/sh\necho "cfgm-bad: postinst fails on purpose" >&2\nexit 1\n' > "$work/cfgm-bad/DEBIAN/postinst"
chmod 755 "$work/cfgm-bad/DEBIAN/postinst"
for name in cfgm-good cfgm-bad; do
  dpkg-deb --root-owner-group --build "$work/$name" "$repo/${name}_1.0_all.deb" >/dev/null
done
flat_repo "$repo"
chmod -R a+rX "$repo"
# The source, and its lists fetched (this source only: no network, and the
# mirror's lists stay as the base has them).
echo 'deb [trusted=yes] file:/srv/cfgm-repo ./' > "$ROOT/etc/apt/sources.list.d/cfgm-test.list"
chroot "$ROOT" apt-get update -q \
  -o Dir::Etc::sourcelist=sources.list.d/cfgm-test.list \
  -o Dir::Etc::sourceparts=- \
  -o APT::Get::List-Cleanup=0 >/dev/null
