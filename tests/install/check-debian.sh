#!/bin/bash
# debian/ agrees with the rest of the tree (ctest: debian_layout):
# - debian/control's Build-Depends name exactly scripts/deps.sh's VMCORE_BUILD_PACKAGES
#   and VMCORE_PACKAGING_PACKAGES, less gcc, make and build-essential (which every Debian
#   package build may assume);
# - debian/changelog's version is the project version of CMakeLists.txt;
# - every file debian/*.examples names exists in the tree; what the *.install files name is
#   checked by building the packages (tests/install/debs.sh, in .ci/run).
#   tests/install/check-debian.sh SOURCE_DIR
set -euo pipefail
src=$(cd "${1:?usage: $0 SOURCE_DIR}" && pwd)
fail=0

. "$src/scripts/deps.sh"
want=$(printf '%s\n' "${VMCORE_BUILD_PACKAGES[@]}" "${VMCORE_PACKAGING_PACKAGES[@]}" |
       grep -vx -e gcc -e make -e build-essential | sort -u)
# Build-Depends: its field and continuation lines, comma-separated; drop versions,
# architecture qualifiers and build profiles; debhelper-compat is debhelper's.
have=$(awk '/^Build-Depends:/ { on = 1; sub(/^Build-Depends:/, ""); print; next }
            on && /^[ \t]/ { print; next } { on = 0 }' "$src/debian/control" |
       tr ',' '\n' | sed -e 's/[[(<].*//' -e 's/:[a-z]*//' -e 's/[[:space:]]//g' |
       sed -e 's/^debhelper-compat$/debhelper/' | grep -v '^$' | sort -u)
if [ "$want" != "$have" ]; then
    echo "debian/control Build-Depends and scripts/deps.sh differ (< deps.sh, > control):" >&2
    diff <(echo "$want") <(echo "$have") >&2 || true
    fail=1
fi

cmake_version=$(sed -n 's/^project([^)]* VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
deb_version=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' "$src/debian/changelog")
if [ -z "$cmake_version" ] || [ "$cmake_version" != "$deb_version" ]; then
    echo "debian/changelog is at '$deb_version', CMakeLists.txt at '$cmake_version'" >&2
    fail=1
fi

for f in "$src"/debian/*.examples; do
    while read -r path; do
        [ -z "$path" ] || [ -e "$src/$path" ] || { echo "$f: $path does not exist" >&2; fail=1; }
    done <"$f"
done

[ "$(cat "$src/debian/source/format")" = "3.0 (native)" ] ||
    { echo "debian/source/format is not 3.0 (native)" >&2; fail=1; }
[ -x "$src/debian/rules" ] || { echo "debian/rules is not executable" >&2; fail=1; }

[ "$fail" -eq 0 ] && echo "debian/: consistent with scripts/deps.sh and CMakeLists.txt"
exit "$fail"
