curl -sN "$RELAY_URL/bedrock/anthropic/v1/messages" \
  -H "Authorization: Bearer $RELAY_KEY" \
  -H 'Content-Type: application/json' \
  -H 'anthropic-version: 2023-06-01' \
  -d '{"model": "us.anthropic.claude-opus-4-7", "max_tokens": 256, "stream": true,
       "messages": [{"role": "user", "content": "Hello"}]}'
