export AWS_ENDPOINT_URL_BEDROCK_RUNTIME="$RELAY_URL/bedrock"
export AWS_BEARER_TOKEN_BEDROCK="$RELAY_KEY"   # Bedrock API-key auth: sent as Authorization: Bearer
node aws-sdk-env.mjs   # or any tool built on the AWS SDK for JavaScript v3
