import { write as fsWrite, writeSync } from 'node:fs';

/**
 * The local server's stdout, written off the main thread. Node writes stdout synchronously
 * when it is a file or a pipe, so each per-call log line and EMF record blocks the event loop
 * for a syscall, and for as long as a slow reader (a terminal, a pipe nobody drains fast)
 * makes it wait: profiled, that was the largest single cost of a call (issue 12). Here writes
 * made in one turn of the event loop are joined and handed to the libuv thread pool as one
 * write; order is kept, nothing is dropped.
 *
 * Bounded: while more than `maxPendingBytes` wait, the next write between two async writes is
 * made synchronously, which slows the server rather than letting the backlog grow.
 */
export interface AsyncStdout {
  /** Resolves once everything written so far is out (before a planned exit). */
  flush(): Promise<void>;
  /** Writes whatever is queued now, synchronously (an immediate exit). */
  flushSync(): void;
  restore(): void;
}

type WriteFn = (chunk: string | Uint8Array, encoding?: BufferEncoding | ((error?: Error | null) => void), callback?: (error?: Error | null) => void) => boolean;

export function makeStdoutAsync(options: { stream?: NodeJS.WriteStream; fd?: number; maxPendingBytes?: number } = {}): AsyncStdout {
  const stream = options.stream ?? process.stdout;
  const fd = options.fd ?? 1;
  const maxPending = options.maxPendingBytes ?? 8 * 1024 * 1024;
  const original = stream.write;
  let queue: Buffer[] = [];
  let queued = 0;
  let callbacks: (() => void)[] = [];
  let inFlight = false;
  let scheduled = false;
  const idle: (() => void)[] = [];

  const take = (): { bytes: Buffer; done: (() => void)[] } => {
    const bytes = queue.length === 1 ? queue[0]! : Buffer.concat(queue, queued);
    const done = callbacks;
    queue = [];
    queued = 0;
    callbacks = [];
    return { bytes, done };
  };
  const writeAllSync = (bytes: Buffer) => {
    let offset = 0;
    while (offset < bytes.length) {
      try {
        offset += writeSync(fd, bytes, offset);
      } catch (error) {
        // A non-blocking descriptor that is full: try again (this path is the bounded, blocking one).
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      }
    }
  };
  const pump = () => {
    scheduled = false;
    if (inFlight) return;
    if (queued === 0) {
      for (const resolve of idle.splice(0)) resolve();
      return;
    }
    inFlight = true;
    const { bytes, done } = take();
    const writeFrom = (offset: number) => {
      fsWrite(fd, bytes, offset, bytes.length - offset, null, (error, written) => {
        if (error && error.code === 'EAGAIN') return void setTimeout(() => writeFrom(offset), 1);
        // Output gone (EPIPE, closed descriptor): nothing more can be done for these bytes.
        const next = error ? bytes.length : offset + written;
        if (next < bytes.length) return writeFrom(next);
        inFlight = false;
        for (const callback of done) callback();
        pump();
      });
    };
    writeFrom(0);
  };

  const write: WriteFn = (chunk, encoding, callback) => {
    const cb = typeof encoding === 'function' ? encoding : callback;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : Buffer.from(chunk);
    queue.push(bytes);
    queued += bytes.length;
    if (cb) callbacks.push(() => cb());
    if (queued > maxPending && !inFlight) {
      const { bytes: all, done } = take();
      writeAllSync(all);
      for (const callback of done) callback();
      return true;
    }
    if (!scheduled) {
      scheduled = true;
      setImmediate(pump);
    }
    return true;
  };
  stream.write = write as typeof stream.write;

  const flushSync = () => {
    if (queued === 0) return;
    const { bytes, done } = take();
    writeAllSync(bytes);
    for (const callback of done) callback();
  };
  // Whatever is still queued when the process exits is written before it goes.
  process.on('exit', flushSync);
  return {
    flush: () =>
      new Promise<void>((resolve) => {
        if (queued === 0 && !inFlight) return resolve();
        idle.push(resolve);
        if (!scheduled && !inFlight) {
          scheduled = true;
          setImmediate(pump);
        }
      }),
    flushSync,
    restore: () => {
      stream.write = original;
      process.off('exit', flushSync);
    },
  };
}
