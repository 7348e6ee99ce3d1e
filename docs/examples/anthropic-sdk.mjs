// node anthropic-sdk.mjs   (RELAY_URL=http://127.0.0.1:4000, RELAY_KEY=sk-…)
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({
  baseURL: `${process.env.RELAY_URL}/bedrock/anthropic`,
  authToken: process.env.RELAY_KEY, // sent as Authorization: Bearer; `apiKey` (x-api-key) works too
});

const stream = client.messages.stream({
  model: 'us.anthropic.claude-opus-4-7',
  max_tokens: 1024,
  messages: [{ role: 'user', content: 'Hello' }],
});
stream.on('text', (text) => process.stdout.write(text));
const message = await stream.finalMessage();
console.log(`\n${JSON.stringify(message.usage)}`);
