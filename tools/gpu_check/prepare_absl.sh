#!/usr/bin/env bash
# Copies Debian's abseil (headers, shared libraries, CMake config) into .gpu/absl, which
# run_on_device.sh builds against: the GPU machine has CUDA and PyTorch but no Debian -dev
# packages. .gpu/ is ignored by git (add `/.gpu/` to .git/info/exclude) and carried to the device.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$REPO/.gpu/absl"
ARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
rm -rf "$DEST"
mkdir -p "$DEST/include" "$DEST/lib/$ARCH"
cp -a /usr/include/absl "$DEST/include/"
cp -a /usr/lib/"$ARCH"/libabsl_*.so* "$DEST/lib/$ARCH/"
cp -a /usr/lib/"$ARCH"/cmake/absl "$DEST/lib/$ARCH/cmake-absl-tmp" 2>/dev/null || true
if [ -d "$DEST/lib/$ARCH/cmake-absl-tmp" ]; then
  mkdir -p "$DEST/lib/$ARCH/cmake" && mv "$DEST/lib/$ARCH/cmake-absl-tmp" "$DEST/lib/$ARCH/cmake/absl"
fi
grep -qx '/.gpu/' "$REPO/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >>"$REPO/.git/info/exclude"
du -sh "$DEST"
