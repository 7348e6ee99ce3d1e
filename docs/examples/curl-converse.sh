curl -s "$RELAY_URL/bedrock/model/cohere.command-r-v1:0/converse" \
  -H "Authorization: Bearer $RELAY_KEY" \
  -H 'Content-Type: application/json' \
  -d '{"messages": [{"role": "user", "content": [{"text": "Hello"}]}]}'
