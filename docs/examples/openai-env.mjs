// OPENAI_BASE_URL=… OPENAI_API_KEY=… node openai-env.mjs
import OpenAI from 'openai';

const client = new OpenAI(); // configured by OPENAI_BASE_URL and OPENAI_API_KEY alone
const completion = await client.chat.completions.create({
  model: process.env.OPENAI_MODEL || 'openai.gpt-oss-120b-1:0',
  messages: [{ role: 'user', content: 'Hello' }],
});
console.log(completion.choices[0].message.content);
