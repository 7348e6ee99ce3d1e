/**
 * The ways a benchmark reaches the fake Bedrock, behind one interface so every figure can be
 * taken the same way and set against the direct call:
 *
 *   direct        client signs with SigV4 → fake                     (the baseline)
 *   local server  client sends a bearer key → relay (npm start) → fake
 *   lambda        the Function URL handler called in-process → fake (no HTTP in front)
 *
 * prepare() is what the client does before the request leaves (SigV4 for the direct call,
 * the auth header for the relay) and is kept out of the timing, so the difference is what the
 * relay adds: its HTTP hop, routing, auth, re-signing and streaming back.
 */
import http from 'node:http';
import { FAKE_CREDENTIALS } from '../../test/support/fake-bedrock.js';
import { createSigner } from '../../lambda/upstream/signer.js';
import { invokeFunctionUrl, type FunctionUrlHandler, type TimedChunk } from './lambda-invoke.js';

export type { TimedChunk } from './lambda-invoke.js';

/** A Bedrock call as the client thinks of it: the native path, not the relay's. */
export interface BedrockCall {
  readonly method: string;
  /** e.g. `/model/amazon.nova-micro-v1%3A0/converse`, encoded as an SDK sends it. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface PreparedCall {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface DoorResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** performance.now() when the request was handed to the transport. */
  readonly startedAt: number;
  readonly chunks: readonly TimedChunk[];
  /** performance.now() when the response ended (or broke). */
  readonly endedAt: number;
  /** False when the body was cut short. */
  readonly complete: boolean;
}

export interface Door {
  readonly name: string;
  prepare(call: BedrockCall): Promise<PreparedCall>;
  send(prepared: PreparedCall): Promise<DoorResponse>;
  close(): void;
}

export function body(response: DoorResponse): Buffer {
  return Buffer.concat(response.chunks.map((chunk) => chunk.data));
}

/** Wall time from handing the request over to the first body byte (ms). */
export function timeToFirstByte(response: DoorResponse): number {
  return (response.chunks[0]?.at ?? response.endedAt) - response.startedAt;
}

export interface HttpDoorOptions {
  /** Sockets kept alive to the target; 1 for sequential latency runs. */
  readonly maxSockets?: number;
}

/** Straight to the fake, signed as an SDK would sign it. */
export function directDoor(fakeUrl: string, options: HttpDoorOptions = {}): Door {
  const base = new URL(fakeUrl);
  const sign = createSigner('us-east-1', async () => ({ ...FAKE_CREDENTIALS }));
  const agent = keepAliveAgent(options);
  return {
    name: 'direct',
    async prepare(call) {
      const headers = await sign({ method: call.method, url: base, path: call.path, query: [], headers: call.headers, body: call.body }, 'bedrock');
      return { method: call.method, path: call.path, headers, body: call.body };
    },
    send: (prepared) => httpSend(base, agent, prepared),
    close: () => agent.destroy(),
  };
}

/** Through the relay's local server (`npm start`), with a key as a relay client sends it. */
export function relayHttpDoor(relayUrl: string, key: string, options: HttpDoorOptions = {}): Door {
  const base = new URL(relayUrl);
  const agent = keepAliveAgent(options);
  return {
    name: 'local server',
    prepare: async (call) => relayCall(call, key),
    send: (prepared) => httpSend(base, agent, prepared),
    close: () => agent.destroy(),
  };
}

/** The Lambda entry called in-process with Function URL events. */
export function lambdaDoor(handler: FunctionUrlHandler, key: string): Door {
  return {
    name: 'lambda handler',
    prepare: async (call) => relayCall(call, key),
    async send(prepared) {
      const startedAt = performance.now();
      // Resolves when the handler has returned (as Lambda runs one invocation at a time per
      // environment); the answer's end is when the response stream ended.
      const result = await invokeFunctionUrl(handler, { method: prepared.method, rawPath: prepared.path, headers: prepared.headers, body: prepared.body });
      return { status: result.status, headers: result.headers, startedAt, chunks: result.chunks, endedAt: result.endedAt, complete: result.complete };
    },
    close: () => undefined,
  };
}

function relayCall(call: BedrockCall, key: string): PreparedCall {
  return { method: call.method, path: `/bedrock${call.path}`, headers: { ...call.headers, authorization: `Bearer ${key}` }, body: call.body };
}

function keepAliveAgent(options: HttpDoorOptions): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 1, keepAliveMsecs: 30_000 });
}

/** One HTTP/1.1 request; every body chunk is timestamped on arrival. */
export function httpSend(base: URL, agent: http.Agent, prepared: PreparedCall): Promise<DoorResponse> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const chunks: TimedChunk[] = [];
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: prepared.method,
        path: prepared.path,
        headers: { ...prepared.headers, 'content-length': String(prepared.body.byteLength) },
        agent,
      },
      (res) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) headers[name] = String(value);
        let settled = false;
        const finish = (complete: boolean) => {
          if (settled) return;
          settled = true;
          resolve({ status: res.statusCode ?? 0, headers, startedAt, chunks, endedAt: performance.now(), complete });
        };
        res.on('data', (data: Buffer) => chunks.push({ at: performance.now(), data }));
        res.on('end', () => finish(res.complete));
        res.on('aborted', () => finish(false));
        res.on('error', () => finish(false));
        res.on('close', () => finish(res.complete));
      },
    );
    req.on('error', reject);
    req.end(prepared.body);
  });
}

/** One call that must succeed before a door is measured; a benchmark of errors measures nothing. */
export async function probe(door: Door, call: BedrockCall): Promise<DoorResponse> {
  const response = await door.send(await door.prepare(call));
  if (response.status !== 200 || !response.complete) {
    throw new Error(`${door.name}: ${call.method} ${call.path} answered ${response.status}: ${body(response).toString('utf8').slice(0, 300)}`);
  }
  return response;
}
