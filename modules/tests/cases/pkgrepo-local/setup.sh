set -euo pipefail
source ../../lib/flat-repo.sh
# A flat apt repository inside the root, signed with the case's throwaway
# key (signing-key.asc; its public half is tree/files/cfgm-test-repo.gpg).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --import signing-key.asc
pkg="$work/cfgm-repo-hello"
mkdir -p "$pkg/DEBIAN" "$pkg/usr/share/cfgm-repo-hello"
echo hello > "$pkg/usr/share/cfgm-repo-hello/hello"
cat > "$pkg/DEBIAN/control" <<'CONTROL'
Package: cfgm-repo-hello
Version: 1.0
Architecture: all
Maintainer: cfgm tests <test@cfgm.invalid>
Description: a package only the case's repository has
CONTROL
repo="$ROOT/srv/cfgm-repo"
mkdir -p "$repo"
dpkg-deb --root-owner-group --build "$pkg" "$repo/cfgm-repo-hello_1.0_all.deb" >/dev/null
flat_repo "$repo"
cd "$repo"
gpg --batch --quiet --yes --clearsign -o InRelease Release
chmod -R a+rX "$repo"
