export CLAUDE_CODE_USE_BEDROCK=1
export ANTHROPIC_BEDROCK_BASE_URL="$RELAY_URL/bedrock"
export AWS_BEARER_TOKEN_BEDROCK="$RELAY_KEY"   # the relay key, not an AWS one
claude -p "Say hi"
