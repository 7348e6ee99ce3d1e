/**
 * Runs real clients configured the way a user would: nothing but the standard environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
 * AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME): no endpoint, credential or middleware in code.
 * Started as a child process by test/integration/sigv4-clients.test.ts with a clean env;
 * prints one JSON line per scenario named on the command line.
 */
import { BedrockAgentRuntimeClient, InvokeAgentCommand, RetrieveCommand } from '@aws-sdk/client-bedrock-agent-runtime';
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';

const MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';

const scenarios: Record<string, () => Promise<unknown>> = {
  // The SDK's default handler for bedrock-runtime: HTTP/2 (h2c against http://).
  'runtime-converse': async () => {
    const client = new BedrockRuntimeClient({ maxAttempts: 1 });
    const answer = await client.send(new ConverseCommand({ modelId: MODEL, messages: [{ role: 'user', content: [{ text: 'Hi' }] }] }));
    client.destroy();
    return answer.output?.message?.content?.[0]?.text;
  },
  'agent-retrieve': async () => {
    const client = new BedrockAgentRuntimeClient({ maxAttempts: 1 });
    const answer = await client.send(new RetrieveCommand({ knowledgeBaseId: 'KB12345678', retrievalQuery: { text: 'relay' } }));
    client.destroy();
    return answer.retrievalResults?.length;
  },
  'agent-invoke-stream': async () => {
    const client = new BedrockAgentRuntimeClient({ maxAttempts: 1 });
    const answer = await client.send(new InvokeAgentCommand({ agentId: 'AGENT12345', agentAliasId: 'ALIAS12345', sessionId: 'session-1', inputText: 'Hello' }));
    let text = '';
    for await (const event of answer.completion ?? []) {
      if (event.chunk?.bytes) text += Buffer.from(event.chunk.bytes).toString('utf8');
    }
    client.destroy();
    return text;
  },
  // Strands Agents with its defaults: BedrockModel() and its default model.
  strands: async () => {
    const { Agent } = await import('@strands-agents/sdk');
    const { BedrockModel } = await import('@strands-agents/sdk/models/bedrock');
    const agent = new Agent({ model: new BedrockModel({ modelId: MODEL, stream: true }), printer: false });
    const result = await agent.invoke('Hello');
    return String(result);
  },
  'langchain-chat': async () => {
    const { ChatBedrockConverse } = await import('@langchain/aws');
    const model = new ChatBedrockConverse({ model: MODEL, maxRetries: 0 });
    const answer = await model.invoke('Hello');
    return typeof answer.content === 'string' ? answer.content : JSON.stringify(answer.content);
  },
  'langchain-kb-retriever': async () => {
    const { AmazonKnowledgeBaseRetriever } = await import('@langchain/aws');
    const retriever = new AmazonKnowledgeBaseRetriever({ knowledgeBaseId: 'KB12345678', topK: 2, region: process.env.AWS_REGION! });
    const documents = await retriever.invoke('relay');
    return documents.length;
  },
};

for (const name of process.argv.slice(2)) {
  const run = scenarios[name];
  if (!run) throw new Error(`unknown scenario ${name}`);
  try {
    const result = await run();
    process.stdout.write(`${JSON.stringify({ name, ok: true, result })}\n`);
  } catch (error) {
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    process.stdout.write(`${JSON.stringify({ name, ok: false, error: { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode } })}\n`);
  }
}
