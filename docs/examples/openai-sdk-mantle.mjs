// node openai-sdk-mantle.mjs   (RELAY_URL=http://127.0.0.1:4000, RELAY_KEY=sk-…)
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: `${process.env.RELAY_URL}/bedrock-mantle/v1`,
  apiKey: process.env.RELAY_KEY,
});

const response = await client.responses.create({
  model: 'openai.gpt-oss-120b',
  input: 'Hello',
});
console.log(response.output_text);
console.log(JSON.stringify(response.usage));
