/**
 * The relay as `npm start` runs it (the app appFromEnv builds, behind the Function URL emulator,
 * virtual keys and the ledger in an embedded dynalite), in front of two fake Bedrock hosts:
 * bedrock-runtime and the control plane (signing name `bedrock`) and bedrock-mantle
 * (`bedrock-mantle`).
 *
 * Unlike test/support/relay-harness.ts it records every side of a call, because an end-to-end
 * test of a closed-source client needs to see what that client sent to the relay (paths, auth
 * and anthropic-* headers), what the relay sent upstream (the fakes' records) and what the relay
 * recorded about it (its per-call telemetry line; the ledger is read through the admin API).
 */
import { appFromEnv } from '../../../lambda/deps.js';
import type { ResponseSink } from '../../../lambda/http/sink.js';
import { installAwslambdaGlobal, startFunctionUrlEmulator } from '../../../lambda/local/function-url-emulator.js';
import type { RelayRequest } from '../../../lambda/pipeline.js';
import { functionUrlHandler } from '../../../lambda/runtime/function-url.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../../lambda/store/embedded.js';
import { rawRequest } from '../../support/clients.js';
import { FAKE_CREDENTIALS, startFakeBedrock, type FakeBedrock } from '../../support/fake-bedrock.js';
import { TEST_MASTER_KEY } from '../../support/relay-harness.js';

/** One request as the relay received it from the client, and how the relay started its answer. */
export interface RelayExchange {
  readonly request: RelayRequest;
  status: number | undefined;
  responseHeaders: Readonly<Record<string, string>> | undefined;
  /** The response body as the relay wrote it so far. */
  responseBody(): Buffer;
}

/** The relay's per-call telemetry record (`relay-call` log line), fields as logged. */
export type CallRecord = Readonly<Record<string, unknown>> & { readonly requestId: string };

export interface RecordedRelay {
  readonly url: string;
  /** bedrock-runtime, bedrock-agent-runtime and the control plane: signed `bedrock`. */
  readonly runtime: FakeBedrock;
  /** bedrock-mantle: signed `bedrock-mantle`. */
  readonly mantle: FakeBedrock;
  readonly exchanges: RelayExchange[];
  readonly calls: CallRecord[];
  /** Issue a virtual key through the admin API (LiteLLM's /key/generate), as an operator would. */
  newKey(fields?: Record<string, unknown>): Promise<string>;
  /** GET an admin path with the master key; the parsed JSON answer. */
  admin(path: string): Promise<{ status: number; json: Record<string, unknown> }>;
  /** Forget what was recorded (keys and the ledger stay). */
  reset(): void;
  close(): Promise<void>;
}

export async function startRecordedRelay(): Promise<RecordedRelay> {
  installAwslambdaGlobal();
  const runtime = await startFakeBedrock();
  const mantle = await startFakeBedrock({ signingService: 'bedrock-mantle' });
  let dynamo: EmbeddedDynamo | undefined;
  try {
    dynamo = await startEmbeddedDynamo();
    const env: Record<string, string> = {
      RELAY_MASTER_KEY: TEST_MASTER_KEY,
      RELAY_KEYS_TABLE: dynamo.tableName,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: runtime.url,
      AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME: runtime.url,
      AWS_ENDPOINT_URL_BEDROCK: runtime.url,
      AWS_ENDPOINT_URL_BEDROCK_MANTLE: mantle.url,
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
    };
    const calls: CallRecord[] = [];
    const { app } = await appFromEnv(env, {
      credentials: async () => ({ ...FAKE_CREDENTIALS }),
      dynamo: dynamo.clients,
      telemetry: {
        log: (_level, message, fields) => {
          if (message === 'relay-call' && fields && typeof fields.requestId === 'string') calls.push(fields as CallRecord);
        },
      },
    });

    const exchanges: RelayExchange[] = [];
    const recording = async (request: RelayRequest, sink: ResponseSink): Promise<void> => {
      const chunks: Buffer[] = [];
      const exchange: RelayExchange = { request, status: undefined, responseHeaders: undefined, responseBody: () => Buffer.concat(chunks) };
      exchanges.push(exchange);
      await app(request, recordingSink(sink, exchange, chunks));
    };
    const server = await startFunctionUrlEmulator({ handler: functionUrlHandler(async () => recording) });
    const store = dynamo;
    const master = { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' };

    return {
      url: server.url,
      runtime,
      mantle,
      exchanges,
      calls,
      async newKey(fields = {}) {
        const res = await rawRequest(server.url, 'POST', '/key/generate', master, JSON.stringify(fields));
        const body = JSON.parse(res.body.toString('utf8')) as { key?: unknown };
        if (res.status !== 200 || typeof body.key !== 'string') {
          throw new Error(`/key/generate answered ${res.status}: ${res.body.toString('utf8')}`);
        }
        return body.key;
      },
      async admin(path) {
        const res = await rawRequest(server.url, 'GET', path, master);
        return { status: res.status, json: JSON.parse(res.body.toString('utf8') || 'null') as Record<string, unknown> };
      },
      reset() {
        exchanges.length = 0;
        calls.length = 0;
        runtime.reset();
        mantle.reset();
      },
      async close() {
        await server.close();
        await store.stop().catch(() => undefined);
        await runtime.close();
        await mantle.close();
      },
    };
  } catch (error) {
    await dynamo?.stop().catch(() => undefined);
    await runtime.close();
    await mantle.close();
    throw error;
  }
}

function recordingSink(sink: ResponseSink, exchange: RelayExchange, chunks: Buffer[]): ResponseSink {
  return {
    start(statusCode, headers) {
      exchange.status = statusCode;
      exchange.responseHeaders = headers;
      sink.start(statusCode, headers);
    },
    write: (chunk) => {
      chunks.push(Buffer.from(chunk));
      return sink.write(chunk);
    },
    end: () => sink.end(),
    get committed() {
      return sink.committed;
    },
    get clientGone() {
      return sink.clientGone;
    },
  };
}
