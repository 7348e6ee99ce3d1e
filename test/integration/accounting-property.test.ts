/**
 * Issue 11, the accounting property: for random interleavings of N concurrent calls on one
 * budgeted key (random max tokens, random actual usage ≤ max, random client aborts whose usage
 * is estimated, random crashes that never settle), once every reservation has settled or
 * expired:
 *
 *   spend ≤ max_budget, and spend = Σ actual cost of settled calls + Σ reservations of crashed
 *   calls, exactly (nano-USD);  reserved_nanos = 0;  requests = N − refused.
 *
 * The accounting modules run as the relay runs them (createAccountingAdmission with the real
 * Budgets, Ledger and RateWindows) against dynalite; calls interleave for real (admissions and
 * settles race in the event loop, each one a DynamoDB round trip), in an order fast-check picks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createAccountingAdmission } from '../../lambda/accounting/admission.js';
import { Budgets } from '../../lambda/accounting/budget.js';
import { Ledger } from '../../lambda/accounting/ledger.js';
import { RESERVATION_TTL_MS, worstCase } from '../../lambda/accounting/reservation.js';
import { RelayError } from '../../lambda/http/errors.js';
import { KeyStore } from '../../lambda/keys/store.js';
import type { CallContext, CallOutcome, TokenUsage } from '../../lambda/pipeline.js';
import { defaultPriceBook } from '../../lambda/pricing/index.js';
import { RouteMatcher } from '../../lambda/routes/match.js';
import { KEY_SORT_KEY, keyPartition } from '../../lambda/store/schema.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { manualClock } from './keys-harness.js';

const MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';
const prices = defaultPriceBook();
const matcher = new RouteMatcher();

let dynamo: EmbeddedDynamo;
before(async () => {
  dynamo = await startEmbeddedDynamo();
});
after(async () => dynamo.stop());

interface PlannedCall {
  readonly maxTokens: number;
  /** Fraction of max tokens actually generated. */
  readonly used: number;
  readonly fate: 'completes' | 'client-aborts' | 'crashes';
  /** Event-loop turns to wait before starting and before settling. */
  readonly startDelay: number;
  readonly runDelay: number;
}

const plannedCall = fc.record({
  maxTokens: fc.integer({ min: 1, max: 4_000 }),
  used: fc.double({ min: 0, max: 1, noNaN: true }),
  fate: fc.constantFrom('completes', 'completes', 'client-aborts', 'crashes'),
  startDelay: fc.integer({ min: 0, max: 5 }),
  runDelay: fc.integer({ min: 0, max: 5 }),
}) as fc.Arbitrary<PlannedCall>;

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('accounting property: random interleavings never spend past the budget and sum exactly', () => {
  it('holds for 25 random runs of up to 30 concurrent calls', { timeout: 300_000 }, async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(plannedCall, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 40 }), async (calls, budgetCents) => {
        run++;
        const clock = manualClock(Date.parse('2031-09-01T10:00:00.000Z'));
        const store = new KeyStore(dynamo.clients.doc, dynamo.tableName, clock);
        const maxBudget = budgetCents / 1000; // $0.001 … $0.04: a few Haiku calls' worth
        const { record } = await store.create({ key_alias: `property-${run}-${Date.now()}`, max_budget: maxBudget });
        const log = () => undefined;
        const ledger = new Ledger({ doc: dynamo.clients.doc, table: dynamo.tableName, log, clock, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 } });
        const budgets = new Budgets({
          doc: dynamo.clients.doc,
          table: dynamo.tableName,
          clock,
          onUnsettled: (token, id, entry) => ledger.recordUnsettled(token, id, entry),
        });
        const admission = createAccountingAdmission({
          ledger,
          budgets,
          price: prices.priceCall.bind(prices),
          worstCase: (call) => worstCase(call, { lookup: (model) => prices.lookup(model)?.price }),
          clock,
          log,
        });

        let expectedSpend = 0;
        let refused = 0;
        let crashed = 0;
        await Promise.all(
          calls.map(async (planned, index) => {
            await turns(planned.startDelay);
            const body = Buffer.from(
              JSON.stringify({ messages: [{ role: 'user', content: [{ text: `call ${index}` }] }], inferenceConfig: { maxTokens: planned.maxTokens } }),
            );
            const call: CallContext = {
              request: {
                method: 'POST',
                rawPath: `/bedrock/model/${MODEL}/converse`,
                rawQueryString: '',
                headers: {},
                body,
                requestId: `run${run}-call${index}`,
              },
              match: matcher.match('POST', `/bedrock/model/${MODEL}/converse`, ''),
              principal: { kind: 'virtual-key', token: record.token, record: (await store.getByHash(record.token))! },
              model: MODEL,
            };
            let admitted;
            try {
              admitted = await admission.admit(call);
            } catch (error) {
              assert.ok(error instanceof RelayError && error.status === 429, String(error));
              refused++;
              return;
            }
            await turns(planned.runDelay);
            const plan = worstCase(call, { lookup: (model) => prices.lookup(model)?.price });
            if (planned.fate === 'crashes') {
              // Never settled: charged at its reservation once it expires.
              expectedSpend += plan.costNanos;
              crashed++;
              return;
            }
            const output = Math.floor(planned.maxTokens * planned.used);
            const aborted = planned.fate === 'client-aborts';
            // An abort's estimate may err upward past max tokens; the ledger bounds it by the reservation.
            const usage: TokenUsage = {
              inputTokens: aborted ? 0 : 20,
              outputTokens: aborted ? output * 2 + 1 : output,
              cacheReadInputTokens: 0,
              cacheWriteInputTokens: 0,
            };
            const recorded: TokenUsage = aborted
              ? { ...usage, inputTokens: plan.inputTokens, outputTokens: Math.min(usage.outputTokens, plan.outputTokens) }
              : usage;
            expectedSpend += prices.priceCall(MODEL, recorded).costNanos;
            const outcome: CallOutcome = {
              status: 200,
              meter: { usage, reported: !aborted, ...(aborted ? { estimated: true, inputUnknown: true } : {}) },
              clientAborted: aborted,
              upstreamFailed: false,
              totalMs: 1,
              bytesOut: 1,
            };
            await admitted.settle(outcome);
          }),
        );

        // The crashed calls' reservations expire, and reading the key's figures charges them.
        clock.advance(RESERVATION_TTL_MS + 1);
        const view = await budgets.read(record.token);
        if (view && view.expired.length > 0) await budgets.sweep(record.token, view.expired);
        const item = (
          await dynamo.clients.doc.send(
            new GetCommand({ TableName: dynamo.tableName, Key: { pk: keyPartition(record.token), sk: KEY_SORT_KEY }, ConsistentRead: true }),
          )
        ).Item!;
        assert.equal(item.reserved_nanos ?? 0, 0, 'no reservation left');
        assert.deepEqual(
          Object.keys(item).filter((name) => name.startsWith('rsv:')),
          [],
        );
        assert.equal(item.spend_nanos, expectedSpend, 'spend = Σ actual + Σ estimated + Σ unsettled reservations, exactly');
        assert.ok((item.spend_nanos as number) <= Math.round(maxBudget * 1e9), `spend ${item.spend_nanos} ≤ budget ${maxBudget}`);
        assert.equal(item.total_requests ?? 0, calls.length - refused);
        assert.equal(item.total_unsettled_requests ?? 0, crashed, 'every crashed call is counted unsettled');
      }),
      { numRuns: 25 },
    );
  });
});
