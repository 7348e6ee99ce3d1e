export OPENAI_BASE_URL="$RELAY_URL/bedrock/openai/v1"   # or "$RELAY_URL/bedrock-mantle/v1"
export OPENAI_API_KEY="$RELAY_KEY"
node openai-env.mjs   # or any tool built on an OpenAI SDK
