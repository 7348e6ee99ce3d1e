/** The official AWS SDK clients pointed at the relay, and a raw HTTP helper that keeps paths as written. */
import http, { type IncomingHttpHeaders } from 'node:http';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { BedrockAgentRuntimeClient } from '@aws-sdk/client-bedrock-agent-runtime';
import type { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * bedrock-runtime with bearer-token auth (`token`, as AWS_BEARER_TOKEN_BEDROCK would give) and
 * its default HTTP/2 handler unless one is passed.
 */
export function runtimeClient(relayUrl: string, key: string, requestHandler?: NodeHttpHandler, maxAttempts = 3): BedrockRuntimeClient {
  return new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint: `${relayUrl}/bedrock`,
    token: { token: key },
    authSchemePreference: ['httpBearerAuth'],
    maxAttempts,
    ...(requestHandler ? { requestHandler } : {}),
  });
}

/**
 * bedrock-agent-runtime has no bearer scheme in its model: sign with throwaway credentials,
 * then replace the signature with the relay key just before sending (the deserialize step runs
 * after signing), as a client of the relay would.
 */
export function agentRuntimeClient(relayUrl: string, key: string): BedrockAgentRuntimeClient {
  const client = new BedrockAgentRuntimeClient({
    region: 'us-east-1',
    endpoint: `${relayUrl}/bedrock`,
    credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' },
    maxAttempts: 1,
  });
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers: Record<string, string> };
      for (const name of Object.keys(request.headers)) {
        if (/^(authorization|x-amz-date|x-amz-security-token|x-amz-content-sha256)$/i.test(name)) delete request.headers[name];
      }
      request.headers.authorization = `Bearer ${key}`;
      return next(args);
    },
    { step: 'deserialize', name: 'relayBearerAuth' },
  );
  return client;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** HTTP/1.1 with the path sent exactly as given (no normalisation of `..` or `%2e`). */
export function rawRequest(baseUrl: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('error', reject);
    req.end(body);
  });
}
