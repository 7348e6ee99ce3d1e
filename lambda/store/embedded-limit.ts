import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * Bounds the requests in flight to the embedded store, queueing the rest in order.
 *
 * Why: every relayed call writes its usage after its last byte. When calls arrive faster than
 * the store's thread can apply them, unbounded, every write is sent at once and they all wait
 * inside dynalite together, each on the SDK's request timer: past the timeout they are retried
 * and then logged for replay, which is what a saturated local server used to do (issue 12).
 * Queued here, before the SDK starts any timer, a write waits its turn instead and is served
 * promptly once sent; the calls waiting on it are what slows the clients down (backpressure
 * through the emulator's in-flight cap), not lost writes.
 */
export function limitInFlight(client: DynamoDBClient, max: number): { readonly waiting: () => number } {
  let active = 0;
  const queue: (() => void)[] = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      if (active < max) active++;
      else await new Promise<void>((resolve) => queue.push(resolve));
      try {
        return await next(args);
      } finally {
        // Hand the slot straight to the next in line, so nobody overtakes the queue.
        const successor = queue.shift();
        if (successor) successor();
        else active--;
      }
    },
    { step: 'initialize', name: 'embeddedStoreInFlightLimit', priority: 'high' },
  );
  return { waiting: () => queue.length };
}
