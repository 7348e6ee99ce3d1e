#!/usr/bin/env bash
# End-to-end step: Claude Code itself, in Bedrock mode and in Mantle mode, against the local
# relay and the fake Bedrock (test/e2e/claude-code.test.ts). Claude Code is a pinned release
# installed once under ~/.cache/bedrock-relay-e2e (override with CLAUDE_CODE_E2E_CACHE), never
# into the project: it is a native binary of several hundred MB that no `npm ci` should fetch.
# The tests skip, saying why, only when the npm registry cannot be reached for that install.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
exec node --import tsx --test --test-timeout=300000 test/e2e/claude-code.test.ts
