/** Where a response goes: a Function URL stream in Lambda, the emulator's stream locally. */
export interface ResponseSink {
  /**
   * Status and headers; must come before the first write. They are committed (sent) only with
   * the first write or end(), so until then a later start() replaces them: an upstream that
   * fails before its first body byte still gets a proper, typed error answer.
   */
  start(statusCode: number, headers: Readonly<Record<string, string>>): void;
  /** Resolves once the chunk is accepted (backpressure); rejects if the client is gone. */
  write(chunk: Uint8Array): Promise<void>;
  end(): Promise<void>;
  /** True once status and headers have gone to the client. */
  readonly committed: boolean;
  /** Fires when the relay can tell the client went away (always locally; in Lambda when the stream breaks). */
  readonly clientGone: AbortSignal;
}
