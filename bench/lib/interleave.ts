/**
 * The measuring loop every sequential comparison uses: one call per door per round, rotating
 * which door goes first, so that whatever else the machine is doing falls on all doors alike.
 * Bounded in time as well as in rounds: a slow target yields fewer samples rather than a run
 * that overshoots its budget (warm-up ends early too, after a quarter of the budget).
 */
import type { BedrockCall, Door, DoorResponse } from './doors.js';

export interface InterleaveOptions {
  readonly warmup: number;
  readonly rounds: number;
  readonly budgetMs: number;
  /** Every response; `measured` is false during warm-up. */
  readonly onResponse: (door: Door, response: DoorResponse, measured: boolean) => void;
  /** After each round (e.g. to let the fake forget what it recorded). */
  readonly afterRound?: (round: number) => void;
}

export interface InterleaveOutcome {
  readonly measuredRounds: number;
  readonly cutShort: boolean;
}

export async function interleave(doors: readonly Door[], call: BedrockCall, options: InterleaveOptions): Promise<InterleaveOutcome> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  let measuredRounds = 0;
  let warm = options.warmup === 0;
  for (let round = 0; measuredRounds < options.rounds && elapsed() < options.budgetMs; round++) {
    if (!warm && (round >= options.warmup || elapsed() > options.budgetMs / 4)) warm = true;
    for (let j = 0; j < doors.length; j++) {
      const door = doors[(round + j) % doors.length]!;
      const response = await door.send(await door.prepare(call));
      options.onResponse(door, response, warm);
    }
    if (warm) measuredRounds++;
    options.afterRound?.(round);
  }
  return { measuredRounds, cutShort: measuredRounds < options.rounds };
}
