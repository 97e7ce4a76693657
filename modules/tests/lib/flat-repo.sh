# Sourced by a case's setup: `flat_repo DIR` indexes the .debs in DIR as a
# flat apt repository (Packages and a Release that lists its hash), for a
# `deb [trusted=yes] file:DIR ./` source or a signed one.
flat_repo() {
  (
    cd "$1"
    dpkg-scanpackages --multiversion . /dev/null 2>/dev/null > Packages
    {
      echo "Origin: cfgm-test"
      echo "Label: cfgm-test"
      echo "Date: $(date -Ru)"
      echo "SHA256:"
      printf ' %s %s Packages\n' "$(sha256sum Packages | cut -d' ' -f1)" "$(stat -c %s Packages)"
    } > Release
  )
}
