/**
 * The relay's admission control with accounting: policy, budget, rate and concurrency limits
 * before a call goes upstream; ledger, tpm tokens, lease release and telemetry after its last
 * byte. Each check is its own module taking its DynamoDB client as an argument; this one only
 * decides the order and what a refusal undoes.
 *
 *   admit:  authorizeCall (403) → budget reservation (429 ServiceQuotaExceeded) → rpm/tpm
 *           windows with the tpm reservation (429 Throttling) → parallel lease (429
 *           Throttling). A refusal gives back what earlier steps took (the budget reservation,
 *           the window's request and tokens), so refused calls count nowhere. The worst case
 *           reserved is lambda/accounting/reservation.ts's.
 *           A key with none of max_budget, budget_duration, rpm/tpm/model limits and
 *           max_parallel_requests causes no DynamoDB call here at all.
 *           If the usage store cannot be reached, the call is refused with 503 (fail closed):
 *           otherwise an outage would switch every budget and limit off.
 *   settle: price the metered usage, then concurrently: release the lease, write the ledger
 *           (lambda/accounting/ledger.ts: swaps the budget reservation for the cost), swap the
 *           tpm reservation for the tokens. Never throws. Usage the meter could only estimate
 *           (the stream ended before its usage event) is bounded by the reservation's worst
 *           case: input unknown → the reservation's input bound; output ≤ its max tokens.
 *
 * Master-key calls pass every check (the master key has no limits) and are recorded as usage
 * of the pseudo-key MASTER (a usage item per day and model under KEY#MASTER; there is no key
 * item, so no spend balance), plus metrics and the log line with keyAlias "master".
 */
import { randomBytes } from 'node:crypto';
import { RelayError } from '../http/errors.js';
import { isKeyRecord, type KeyRecord } from '../keys/types.js';
import { childLog, type LogFn } from '../observability/log.js';
import type { Admission, AdmissionControl, CallContext, CallOutcome, TokenUsage } from '../pipeline.js';
import { authorizeCall } from '../policy/authorize.js';
import { pricedTierOf, refuseUnpricedServiceTier } from '../policy/service-tier.js';
import type { CallPrice, ModelCandidates } from '../pricing/book.js';
import { Budgets, type BudgetReservation } from './budget.js';
import { RESERVATION_TTL_MS, reserves, type WorstCase } from './reservation.js';
import { MASTER_PRINCIPAL, dayOf, usageModelLabel } from './items.js';
import type { Ledger, LedgerEntry, LedgerTokens } from './ledger.js';
import { rateScopes, type Lease, type Leases, type RateTicket, type RateWindows } from './limits.js';
import { telemetryAlias } from './telemetry.js';

export interface AccountingDeps {
  /** Absent without a key table (master-key-only mode): calls are metered for telemetry, nothing is stored. */
  readonly ledger?: Pick<Ledger, 'record'>;
  readonly budgets?: Budgets;
  readonly windows?: RateWindows;
  readonly leases?: Leases;
  readonly price: (model: ModelCandidates, usage: TokenUsage, tier?: string) => CallPrice;
  /** The call's worst case (lambda/accounting/reservation.ts); absent: nothing is reserved. */
  readonly worstCase?: (call: CallContext) => WorstCase;
  /** How long an unsettled reservation is held before it is charged (default RESERVATION_TTL_MS). */
  readonly reservationTtlMs?: number;
  readonly clock: () => number;
  readonly log: LogFn;
}

type Refusal = 'policy' | 'budget' | 'rate' | 'parallel' | 'store-unavailable';

export function createAccountingAdmission(deps: AccountingDeps): AdmissionControl {
  return {
    admit: async (call) => {
      const { principal } = call;
      // Every line this call's accounting logs carries its requestId (settle logs through it too).
      const log = childLog(deps.log, { requestId: call.request.requestId });
      const operation = call.match.route.operation;
      if (principal.kind === 'master') {
        call.record?.note({ keyAlias: telemetryAlias(principal), operation, model: call.model });
        return settleWith(deps, log, call, MASTER_PRINCIPAL, undefined, {});
      }
      const record = principal.record;
      if (!isKeyRecord(record)) throw new RelayError(403, 'AccessDeniedException', 'The API key could not be checked.');
      const token = principal.token;
      const keyAlias = telemetryAlias({ kind: 'virtual-key', token, alias: record.key_alias });
      call.record?.note({ keyAlias, operation, model: call.model });

      let stage: Refusal = 'policy';
      let ticket: RateTicket | undefined;
      let lease: Lease | undefined;
      let reservation: BudgetReservation | undefined;
      let plan: WorstCase | undefined;
      try {
        authorizeCall(record, call);
        refuseUnpricedServiceTier(record, call, deps.price);
        stage = 'budget';
        const now = deps.clock();
        const budgeted = deps.budgets !== undefined && Budgets.applies(record, now);
        const scopes = deps.windows ? rateScopes(record, call.model) : [];
        const tpmLimited = scopes.some((scope) => scope.tpm !== undefined);
        // Only keys with a budget or a tpm limit reserve: the others pay no extra write.
        if ((budgeted || tpmLimited) && deps.worstCase && reserves(call)) plan = deps.worstCase(call);
        if (budgeted) {
          const wanted: BudgetReservation | undefined =
            plan && plan.costNanos > 0
              ? {
                  id: call.request.requestId,
                  costNanos: plan.costNanos,
                  model: usageModelLabel(call.model, operation),
                  day: dayOf(now),
                  expiresAt: now + (deps.reservationTtlMs ?? RESERVATION_TTL_MS),
                }
              : undefined;
          if (await deps.budgets!.admit(token, record, wanted)) reservation = wanted;
        }
        stage = 'rate';
        if (scopes.length > 0) ticket = await deps.windows!.admit(token, scopes, plan ? plan.inputTokens + plan.outputTokens : 0);
        stage = 'parallel';
        if (deps.leases && record.max_parallel_requests !== undefined) {
          // Short random ids keep the lease map small (one DynamoDB item holds every lease of the key).
          lease = await deps.leases.acquire(token, record.max_parallel_requests, randomBytes(9).toString('base64url'));
        }
      } catch (error) {
        if (ticket) await deps.windows!.refund(token, ticket);
        if (reservation) await deps.budgets!.release(token, reservation).catch(() => undefined);
        if (error instanceof RelayError) {
          call.record?.note({ refusal: stage });
          throw error;
        }
        log('error', 'usage store unavailable at admission', { keyAlias, error: (error as Error)?.name });
        call.record?.note({ refusal: 'store-unavailable' });
        throw new RelayError(
          503,
          'ServiceUnavailableException',
          'The usage store is unavailable, so budgets and limits cannot be checked. Nothing was sent to Bedrock; retry shortly.',
          { 'retry-after': '1' },
        );
      }
      return settleWith(deps, log, call, token, record, { lease, ticket, reservation, plan });
    },
  };
}

function settleWith(
  deps: AccountingDeps,
  log: LogFn,
  call: CallContext,
  token: string,
  record: KeyRecord | undefined,
  held: { lease?: Lease; ticket?: RateTicket; reservation?: BudgetReservation; plan?: WorstCase },
): Admission {
  return {
    settle: async (outcome: CallOutcome) => {
      try {
        const { entry, price } = ledgerEntry(deps, call, token, record, outcome, held);
        call.record?.note({ price, tokens: entry.tokens });
        const total = entry.tokens.input + entry.tokens.output + entry.tokens.cacheRead + entry.tokens.cacheWrite;
        const results = await Promise.allSettled([
          held.lease?.release(),
          deps.ledger?.record(entry),
          held.ticket && deps.windows ? deps.windows.settleTokens(token, held.ticket, total) : undefined,
        ]);
        for (const result of results) {
          // The ledger logs its own failures for replay; a lost tpm increment only loosens a limit for a minute.
          if (result.status === 'rejected') log('warn', 'settle step failed', { error: (result.reason as Error)?.name });
        }
      } catch (error) {
        log('error', 'settle failed', { error: (error as Error)?.name });
      }
    },
  };
}

function ledgerEntry(
  deps: AccountingDeps,
  call: CallContext,
  token: string,
  record: KeyRecord | undefined,
  outcome: CallOutcome,
  held: { reservation?: BudgetReservation; plan?: WorstCase } = {},
): { entry: LedgerEntry; price: CallPrice } {
  // An estimate is bounded by the call's worst case, computed here if admission did not need it.
  const plan = held.plan ?? (outcome.meter?.estimated && deps.worstCase && reserves(call) ? deps.worstCase(call) : undefined);
  const usage: TokenUsage = boundEstimate(outcome, plan);
  const tokens: LedgerTokens = {
    input: usage.inputTokens,
    output: usage.outputTokens,
    cacheRead: usage.cacheReadInputTokens,
    cacheWrite: usage.cacheWriteInputTokens,
    guardrailUnits: usage.guardrailUnits ?? 0,
  };
  const responseModel = outcome.meter?.responseModel;
  const price = deps.price([call.model, responseModel], usage, pricedTierOf(call));
  const anyTokens = tokens.input + tokens.output + tokens.cacheRead + tokens.cacheWrite > 0;
  const at = deps.clock();
  const entry: LedgerEntry = {
    callId: call.request.requestId,
    token,
    ...(record?.key_alias ? { keyAlias: record.key_alias } : {}),
    model: usageModelLabel(call.model ?? responseModel, call.match.route.operation),
    day: dayOf(at),
    at: new Date(at).toISOString(),
    tokens,
    costNanos: price.priced ? price.costNanos : 0,
    unpriced: anyTokens && !price.priced,
    failed: outcome.status >= 400 || (outcome.upstreamFailed && !outcome.clientAborted),
    ...(outcome.meter?.estimated ? { estimated: true } : {}),
    ...(held.reservation ? { reservedNanos: held.reservation.costNanos, reservationDay: held.reservation.day } : {}),
  };
  return { entry, price };
}

/**
 * The metered usage; an estimate (the stream ended before its usage event) is bounded by the
 * worst case the call reserved: the model cannot have generated more than its max tokens, and
 * input the stream never reported is taken at the reservation's input bound (erring upward).
 */
function boundEstimate(outcome: CallOutcome, plan: WorstCase | undefined): TokenUsage {
  const usage: TokenUsage = outcome.meter?.usage ?? { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 };
  if (!outcome.meter?.estimated || !plan) return usage;
  return {
    ...usage,
    inputTokens: outcome.meter.inputUnknown ? Math.max(usage.inputTokens, plan.inputTokens) : usage.inputTokens,
    outputTokens: Math.min(usage.outputTokens, plan.outputTokens),
  };
}
