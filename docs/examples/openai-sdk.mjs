// node openai-sdk.mjs   (RELAY_URL=http://127.0.0.1:4000, RELAY_KEY=sk-…)
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: `${process.env.RELAY_URL}/bedrock/openai/v1`,
  apiKey: process.env.RELAY_KEY,
});

const stream = await client.chat.completions.create({
  model: 'openai.gpt-oss-120b-1:0',
  messages: [{ role: 'user', content: 'Hello' }],
  stream: true,
});
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? '');
process.stdout.write('\n');
