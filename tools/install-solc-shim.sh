#!/bin/sh
# Registers the npm solc as `solc-v<version>` where py-solc-x looks for compilers, so that
# `ape compile` never tries to download one (see TOOLCHAIN.md).
set -eu
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(node -e "process.stdout.write(require('$root/node_modules/solc/package.json').version)")"
dir="${SOLCX_BINARY_PATH:-$HOME/.solcx}"
mkdir -p "$dir"
target="$dir/solc-v$version"
printf '#!/bin/sh\nexec node "%s/tools/solc-shim.cjs" "$@"\n' "$root" > "$target.tmp"
chmod +x "$target.tmp"
mv "$target.tmp" "$target"
echo "solc $version registered at $target"
