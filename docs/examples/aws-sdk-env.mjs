// AWS_ENDPOINT_URL_BEDROCK_RUNTIME=… AWS_BEARER_TOKEN_BEDROCK=… node aws-sdk-env.mjs
import { BedrockRuntimeClient, ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';

const client = new BedrockRuntimeClient({ region: 'us-east-1' }); // endpoint and key from the environment
const { stream } = await client.send(
  new ConverseStreamCommand({
    modelId: 'us.anthropic.claude-haiku-4-5-20251001-v1:0',
    messages: [{ role: 'user', content: [{ text: 'Hello' }] }],
  }),
);
for await (const event of stream) process.stdout.write(event.contentBlockDelta?.delta?.text ?? '');
process.stdout.write('\n');
