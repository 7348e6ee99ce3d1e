// node aws-sdk-converse.mjs   (RELAY_URL=http://127.0.0.1:4000, RELAY_KEY=sk-…)
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';

const client = new BedrockRuntimeClient({
  region: 'us-east-1',
  endpoint: `${process.env.RELAY_URL}/bedrock`,
  token: { token: process.env.RELAY_KEY }, // the relay key instead of AWS credentials
  authSchemePreference: ['httpBearerAuth'],
});

const answer = await client.send(
  new ConverseCommand({
    modelId: 'us.amazon.nova-micro-v1:0',
    messages: [{ role: 'user', content: [{ text: 'Hello' }] }],
  }),
);
console.log(answer.output.message.content[0].text);
console.log(JSON.stringify(answer.usage));
