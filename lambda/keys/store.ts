import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ALIAS_SORT_KEY, KEY_LIST_PARTITION, KEY_LIST_SORT_KEY, TABLE_SCHEMA, aliasPartition, keyPartition } from '../store/schema.js';
import {
  ItemTable,
  StoreUnavailableError,
  Update,
  and,
  equals,
  exists,
  expectApplied,
  ifNotExists,
  keyItemKey,
  liveKey,
  plus,
  type Item,
  type ItemKey,
} from '../store/items.js';
import { generateAccessKeyId } from './aws-credentials.js';
import { addDuration, parseDuration } from './duration.js';
import { duplicateAlias, keyNotFound } from './errors.js';
import { displayForm, generateSecret, hashSecret } from './secrets.js';
import { RESERVATION_PREFIX, RESERVED_ATTRIBUTE } from '../accounting/items.js';
import { systemClock, usdToNanos, type Clock, type JsonObject, type KeyRecord } from './types.js';
import type { KeyChanges, ListQuery } from './validate.js';

/** How long an expired key stays readable (so /key/info and 401s can say "expired") before DynamoDB's TTL removes it. */
export const EXPIRED_KEY_RETENTION_SECONDS = 7 * 86_400;
/** How long a regenerated key's tombstone stays, so ledger writes still in flight can follow it to its successor. */
export const REGENERATED_TOMBSTONE_SECONDS = 86_400;
/**
 * An alias claim whose key item does not (yet) exist is respected for this long: creating a key
 * writes the claim first and the key item right after. Older orphaned claims (a crash between
 * the two writes, or a key removed by TTL) may be taken over.
 */
export const ALIAS_CLAIM_GRACE_MS = 60_000;
const MAX_REGENERATION_HISTORY = 20;

export interface CreatedKey {
  /** The secret: returned once, never stored. */
  readonly secret: string;
  readonly record: KeyRecord;
}

export interface RegeneratedKey extends CreatedKey {
  readonly previousToken: string;
}

export interface ListResult {
  readonly records: KeyRecord[];
  readonly total: number;
}

/** What the authenticator needs: nothing else of the store. */
export interface KeyLookup {
  getByHash(token: string): Promise<KeyRecord | undefined>;
  /** The token an AWS access key id was issued to (the key itself may since be gone: check it with getByHash). */
  getTokenByAccessKeyId(accessKeyId: string): Promise<string | undefined>;
}

/**
 * The AWS access key id lookup item: one small item per id, in its own partition (like the
 * alias claims), so the id → key lookup is a single GetItem and adds no index.
 */
export const ACCESS_KEY_SORT_KEY = 'AKID';
export function accessKeyPartition(accessKeyId: string): string {
  return `AKID#${accessKeyId}`;
}

interface AccessKeyItem {
  readonly pk: string;
  readonly sk: string;
  readonly token: string;
  readonly created_at: string;
}

interface AliasItem {
  readonly pk: string;
  readonly sk: string;
  readonly token: string;
  readonly claimed_at: string;
}

/**
 * Virtual keys in the relay's DynamoDB table, with single-item conditional writes only:
 * dynalite (the embedded store) has no TransactWriteItems, and one implementation must serve
 * both. Multi-item changes are ordered so every intermediate state is safe:
 *   - alias uniqueness: the ALIAS#<alias> item is claimed with attribute_not_exists before the
 *     key item is written (an orphaned claim is taken over after ALIAS_CLAIM_GRACE_MS);
 *   - regenerate: the old key item is first marked `superseded_by` in one conditional update —
 *     from that instant the old secret is refused — and only then is the new item written.
 * "Live" means: the key item exists, is not superseded, and its `ttl` has not passed (dynalite
 * never expires items, and DynamoDB may take days to).
 */
export class KeyStore implements KeyLookup {
  private readonly table: ItemTable;

  constructor(
    doc: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.table = new ItemTable(doc, tableName, { failures: 'store-unavailable' });
  }

  /** Create a key; `changes` is a validated generate request. */
  async create(changes: KeyChanges): Promise<CreatedKey> {
    const now = this.clock();
    const secret = generateSecret();
    const token = hashSecret(secret);
    // The id's lookup item goes first: a key item never names an id that does not lead back to it.
    const accessKeyId = await this.claimAccessKeyId(token, now);
    const record = { ...buildRecord(token, displayForm(secret), changes, now), aws_access_key_id: accessKeyId };
    try {
      if (record.key_alias) await this.claimAlias(record.key_alias, token);
    } catch (error) {
      await this.releaseAccessKeyId(accessKeyId, token).catch(() => undefined);
      throw error;
    }
    try {
      // The listing entry before the key: a crash in between leaves an entry without a key,
      // which listing skips, never a key that /key/list cannot show.
      await this.putListEntry(record);
      // The token hashes a fresh secret: a key item already there is a fault, not a race.
      expectApplied(await this.table.putIfAbsent(toItem(record)));
    } catch (error) {
      await this.deleteListEntry(token).catch(() => undefined);
      if (record.key_alias) await this.releaseAlias(record.key_alias, token).catch(() => undefined);
      await this.releaseAccessKeyId(accessKeyId, token).catch(() => undefined);
      throw error;
    }
    return { secret, record };
  }

  async getTokenByAccessKeyId(accessKeyId: string): Promise<string | undefined> {
    const item = (await this.table.get({ pk: accessKeyPartition(accessKeyId), sk: ACCESS_KEY_SORT_KEY })) as AccessKeyItem | undefined;
    const token = item?.token;
    return typeof token === 'string' ? token : undefined;
  }

  async getByHash(token: string): Promise<KeyRecord | undefined> {
    const item = await this.getKeyItem(token);
    return item && this.isLive(item) ? item : undefined;
  }

  async getBySecret(secret: string): Promise<KeyRecord | undefined> {
    return this.getByHash(hashSecret(secret));
  }

  async getByAlias(alias: string): Promise<KeyRecord | undefined> {
    const claim = await this.getAliasItem(alias);
    if (!claim) return undefined;
    const owner = await this.followSuccessors(claim.token);
    return owner && owner.key_alias === alias ? owner : undefined;
  }

  /** Keys newest first, filtered, one page of them, plus how many match in all. */
  async list(query: Omit<ListQuery, 'return_full_object'>): Promise<ListResult> {
    let matching: KeyRecord[];
    if (query.key_hash !== undefined || query.key_alias !== undefined) {
      const found = query.key_hash !== undefined ? await this.getByHash(query.key_hash) : await this.getByAlias(query.key_alias!);
      matching = found ? [found] : [];
      if (query.key_alias !== undefined) matching = matching.filter((record) => record.key_alias === query.key_alias);
    } else {
      matching = await this.queryAll(query);
    }
    matching = matching.filter(
      (record) => (query.user_id === undefined || record.user_id === query.user_id) && (query.team_id === undefined || record.team_id === query.team_id),
    );
    const start = (query.page - 1) * query.size;
    return { records: matching.slice(start, start + query.size), total: matching.length };
  }

  /** Apply a validated change set (LiteLLM's /key/update semantics: null clears, absent keeps). */
  async update(token: string, changes: KeyChanges): Promise<KeyRecord> {
    const current = await this.getByHash(token);
    if (!current) throw keyNotFound('key', shortToken(token));
    const now = this.clock();
    const aliasChange = 'key_alias' in changes && (changes.key_alias ?? undefined) !== current.key_alias;
    const newAlias = aliasChange ? (changes.key_alias ?? undefined) : undefined;
    if (newAlias) await this.claimAlias(newAlias, token);
    let updated: KeyRecord;
    try {
      updated = await this.updateLive(token, changeUpdate(changes, now));
    } catch (error) {
      if (newAlias) await this.releaseAlias(newAlias, token).catch(() => undefined);
      throw error;
    }
    if (aliasChange && current.key_alias) await this.releaseAlias(current.key_alias, token).catch(() => undefined);
    return updated;
  }

  async setBlocked(token: string, blocked: boolean): Promise<KeyRecord> {
    return this.updateLive(token, changeUpdate({ blocked }, this.clock()));
  }

  /** Delete keys by token. All must exist, or nothing is deleted (404 naming the missing ones). */
  async delete(tokens: readonly string[]): Promise<KeyRecord[]> {
    const found = await Promise.all(tokens.map(async (token) => [token, await this.getByHash(token)] as const));
    const missing = found.filter(([, record]) => !record).map(([token]) => shortToken(token));
    if (missing.length > 0) throw keyNotFound('keys', missing.join(', '));
    const deleted: KeyRecord[] = [];
    for (const [token] of found) {
      const removed = await this.table.delete(keyItemKey(token), { condition: liveKey, returnOld: true });
      // Deleted or regenerated by someone else since we looked: it is gone either way.
      if (removed.status === 'condition-failed') continue;
      const record = fromItem(removed.item);
      await this.deleteListEntry(token).catch(() => undefined);
      if (record) {
        deleted.push(record);
        if (record.key_alias) await this.releaseAlias(record.key_alias, token).catch(() => undefined);
        // Tidiness only: an id whose key is gone is refused anyway (getByHash finds nothing).
        if (record.aws_access_key_id) await this.releaseAccessKeyId(record.aws_access_key_id, token).catch(() => undefined);
      }
    }
    return deleted;
  }

  /** Delete keys by alias. All must exist, or nothing is deleted. */
  async deleteByAliases(aliases: readonly string[]): Promise<KeyRecord[]> {
    const found = await Promise.all(aliases.map(async (alias) => [alias, await this.getByAlias(alias)] as const));
    const missing = found.filter(([, record]) => !record).map(([alias]) => alias);
    if (missing.length > 0) throw keyNotFound('key_aliases', `no key with key_alias ${missing.map((alias) => `"${alias}"`).join(', ')}`);
    return this.delete(found.map(([, record]) => record!.token));
  }

  /**
   * A new secret for the same key: policy, spend and alias carry over (plus optional changes).
   * The old secret stops working in the single conditional update that marks it superseded.
   */
  async regenerate(token: string, changes: KeyChanges = {}): Promise<RegeneratedKey> {
    const old = await this.getKeyItem(token);
    const now = this.clock();
    // A superseded key whose successor never got written (a crash mid-way) may be regenerated again.
    const resumable =
      old?.superseded_by !== undefined &&
      old.superseded_at !== undefined &&
      now - Date.parse(old.superseded_at) > ALIAS_CLAIM_GRACE_MS &&
      !(await this.getKeyItem(old.superseded_by));
    if (!old || (!resumable && !this.isLive(old)) || (old.ttl !== undefined && old.ttl * 1000 <= now)) {
      throw keyNotFound('key', shortToken(token));
    }

    const secret = generateSecret();
    const newToken = hashSecret(secret);
    // A new secret is a new AWS pair too: the old id keeps pointing at the superseded token, which is refused.
    const accessKeyId = await this.claimAccessKeyId(newToken, now);
    const aliasAfter = 'key_alias' in changes ? (changes.key_alias ?? undefined) : old.key_alias;
    const aliasChanged = aliasAfter !== old.key_alias;
    if (aliasChanged && aliasAfter) await this.claimAlias(aliasAfter, newToken);

    const releaseClaims = async () => {
      if (aliasChanged && aliasAfter) await this.releaseAlias(aliasAfter, newToken).catch(() => undefined);
      await this.releaseAccessKeyId(accessKeyId, newToken).catch(() => undefined);
    };
    const superseding = new Update()
      .set('superseded_by', newToken)
      .set('superseded_at', iso(now))
      .set('updated_at', iso(now))
      .set(TABLE_SCHEMA.ttlAttribute, Math.ceil(now / 1000) + REGENERATED_TOMBSTONE_SECONDS)
      .remove(TABLE_SCHEMA.gsi1.partitionKey)
      .remove(TABLE_SCHEMA.gsi1.sortKey);
    const superseded = await this.table
      .update(keyItemKey(token), superseding, {
        condition: resumable ? and(exists('pk'), equals('superseded_by', old.superseded_by)) : liveKey,
        returnNew: true,
      })
      .catch(async (error: unknown) => {
        await releaseClaims();
        throw error;
      });
    if (superseded.status === 'condition-failed') {
      await releaseClaims();
      throw keyNotFound('key', shortToken(token));
    }
    const frozen = fromItem(superseded.item)!;

    // The spend read here is final: ledger writes condition on the key not being superseded.
    const base: KeyRecord = {
      ...stripLifecycle(frozen),
      token: newToken,
      key_name: displayForm(secret),
      aws_access_key_id: accessKeyId,
      updated_at: iso(now),
      regenerated_from: [token, ...(frozen.regenerated_from ?? [])].slice(0, MAX_REGENERATION_HISTORY),
    };
    const record = applyChanges(base, changes, now);
    await this.putListEntry(record);
    // Reservations of calls still in flight move with the spend they are part of: their settle
    // follows superseded_by to this item (lambda/accounting/ledger.ts).
    const reservations = Object.fromEntries(Object.entries(superseded.item ?? {}).filter(([name]) => name.startsWith(RESERVATION_PREFIX)));
    expectApplied(await this.table.putIfAbsent({ ...toItem(record), ...reservations }));
    await this.deleteListEntry(token).catch(() => undefined);
    if (record.key_alias && !aliasChanged) await this.moveAlias(record.key_alias, token, newToken, now);
    if (aliasChanged && old.key_alias) await this.releaseAlias(old.key_alias, token).catch(() => undefined);
    if (old.aws_access_key_id) await this.releaseAccessKeyId(old.aws_access_key_id, token).catch(() => undefined);
    return { secret, record, previousToken: token };
  }

  /** A cheap read that proves the table answers (readiness). */
  async ping(): Promise<void> {
    await this.table.get({ pk: 'HEALTH', sk: 'HEALTH' }, { consistent: false });
  }

  // ── internals ──

  private isLive(record: KeyRecord): boolean {
    return record.superseded_by === undefined && (record.ttl === undefined || record.ttl * 1000 > this.clock());
  }

  private async getKeyItem(token: string): Promise<KeyRecord | undefined> {
    return fromItem(await this.table.get(keyItemKey(token)));
  }

  /** The live key a token leads to, following regenerations (a claim may lag one behind). */
  private async followSuccessors(token: string): Promise<KeyRecord | undefined> {
    let current = token;
    for (let hop = 0; hop < 3; hop++) {
      const item = await this.getKeyItem(current);
      if (!item) return undefined;
      if (item.superseded_by === undefined) return this.isLive(item) ? item : undefined;
      current = item.superseded_by;
    }
    return undefined;
  }

  private async getAliasItem(alias: string): Promise<AliasItem | undefined> {
    return (await this.table.get(aliasKey(alias))) as AliasItem | undefined;
  }

  /** Claim an alias for a token, or throw 400 if another key holds it. */
  private async claimAlias(alias: string, token: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.clock();
      const claim: AliasItem = { ...aliasKey(alias), token, claimed_at: iso(now) };
      if ((await this.table.putIfAbsent(claim)).status === 'applied') return;
      const existing = await this.getAliasItem(alias);
      if (!existing) continue; // released meanwhile: try again
      if (existing.token === token) return;
      const owner = await this.followSuccessors(existing.token);
      const fresh = now - Date.parse(existing.claimed_at) < ALIAS_CLAIM_GRACE_MS;
      if ((owner && owner.key_alias === alias) || fresh) throw duplicateAlias(alias);
      // Orphaned claim: take it over, unless someone else does first.
      const takenOver = await this.table.put(claim, and(equals('token', existing.token), equals('claimed_at', existing.claimed_at)));
      if (takenOver.status === 'applied') return;
      throw duplicateAlias(alias);
    }
    throw duplicateAlias(alias);
  }

  /** A fresh access key id claimed for a token (retried on the negligible chance of a collision). */
  private async claimAccessKeyId(token: string, now: number): Promise<string> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const accessKeyId = generateAccessKeyId();
      const item: AccessKeyItem = { pk: accessKeyPartition(accessKeyId), sk: ACCESS_KEY_SORT_KEY, token, created_at: iso(now) };
      if ((await this.table.putIfAbsent(item)).status === 'applied') return accessKeyId;
    }
    throw new StoreUnavailableError('PutItem', new Error('could not claim a unique AWS access key id'));
  }

  /** Only while the id still points at this token (a claim is never released for another key). */
  private async releaseAccessKeyId(accessKeyId: string, token: string): Promise<void> {
    await this.table.delete({ pk: accessKeyPartition(accessKeyId), sk: ACCESS_KEY_SORT_KEY }, { condition: equals('token', token) });
  }

  private async releaseAlias(alias: string, token: string): Promise<void> {
    await this.table.delete(aliasKey(alias), { condition: equals('token', token) });
  }

  private async moveAlias(alias: string, from: string, to: string, now: number): Promise<void> {
    // Unless someone else holds it by now. getByAlias follows superseded_by, so a claim left
    // pointing at the old token still resolves.
    await this.table.update(aliasKey(alias), new Update().set('token', to).set('claimed_at', iso(now)), { condition: equals('token', from) });
  }

  private async updateLive(token: string, update: Update): Promise<KeyRecord> {
    const written = await this.table.update(keyItemKey(token), update, { condition: liveKey, returnNew: true });
    if (written.status === 'condition-failed') throw keyNotFound('key', shortToken(token));
    const record = fromItem(written.item)!;
    if (!this.isLive(record)) throw keyNotFound('key', shortToken(token));
    return record;
  }

  private async queryAll(query: Pick<ListQuery, 'user_id' | 'team_id'>): Promise<KeyRecord[]> {
    const records: KeyRecord[] = [];
    const listed: string[] = [];
    const index = { index: TABLE_SCHEMA.gsi1.name, partition: [TABLE_SCHEMA.gsi1.partitionKey, KEY_LIST_PARTITION], descending: true } as const;
    for await (const item of this.table.query(index)) {
      if (item.sk === KEY_LIST_SORT_KEY && typeof item.token === 'string') {
        listed.push(item.token);
        continue;
      }
      // A key item written by an earlier version, still in the index itself: list it, and move
      // it to a listing entry so the ledger's writes to it stop reaching the index.
      const record = fromItem(item);
      if (!record || !this.isLive(record)) continue;
      await this.moveToListEntry(record);
      listed.push(record.token);
    }
    const byToken = await this.getKeyItems(listed);
    for (const token of listed) {
      const record = byToken.get(token);
      // An entry without a live key: a crash between its two writes, or a key expired by TTL.
      if (!record || !this.isLive(record)) continue;
      if (query.user_id !== undefined && record.user_id !== query.user_id) continue;
      if (query.team_id !== undefined && record.team_id !== query.team_id) continue;
      records.push(record);
    }
    return records;
  }

  /** Key items by token, read consistently. */
  private async getKeyItems(tokens: readonly string[]): Promise<Map<string, KeyRecord>> {
    const found = new Map<string, KeyRecord>();
    for (const item of await this.table.batchGet([...new Set(tokens)].map(keyItemKey))) {
      const record = fromItem(item);
      if (record) found.set(record.token, record);
    }
    return found;
  }

  private async putListEntry(record: Pick<KeyRecord, 'token' | 'created_at'>): Promise<void> {
    await this.table.put({
      pk: keyPartition(record.token),
      sk: KEY_LIST_SORT_KEY,
      token: record.token,
      // Newest first on the index; the token makes the sort key unique.
      gsi1pk: KEY_LIST_PARTITION,
      gsi1sk: `${record.created_at}#${record.token}`,
    });
  }

  private async deleteListEntry(token: string): Promise<void> {
    await this.table.delete({ pk: keyPartition(token), sk: KEY_LIST_SORT_KEY });
  }

  /** An earlier version's key item, listed by itself: give it an entry, then take it out of the index. */
  private async moveToListEntry(record: KeyRecord): Promise<void> {
    await this.putListEntry(record);
    const unindexed = new Update().remove(TABLE_SCHEMA.gsi1.partitionKey).remove(TABLE_SCHEMA.gsi1.sortKey);
    await this.table.update(keyItemKey(record.token), unindexed, { condition: exists('pk') });
  }
}

// ── records and items ──

const KEY_ITEM_ATTRIBUTES = new Set([TABLE_SCHEMA.partitionKey, TABLE_SCHEMA.sortKey, TABLE_SCHEMA.gsi1.partitionKey, TABLE_SCHEMA.gsi1.sortKey, 'type']);

function toItem(record: KeyRecord): Item & ItemKey {
  return {
    ...keyItemKey(record.token),
    type: 'key',
    ...record,
    // On the item, spend includes the reservations in flight (see fromItem).
    spend_nanos: record.spend_nanos + (record.reserved_nanos ?? 0),
    metadata: encodeMetadata(record.metadata),
  };
}

function fromItem(item: Item | undefined): KeyRecord | undefined {
  if (!item || typeof item.token !== 'string') return undefined;
  const record: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(item)) {
    if (!KEY_ITEM_ATTRIBUTES.has(name) && !name.startsWith(RESERVATION_PREFIX)) record[name] = value;
  }
  // The item's spend_nanos holds the reservations of calls in flight; a record shows settled spend.
  const reserved = typeof item[RESERVED_ATTRIBUTE] === 'number' ? (item[RESERVED_ATTRIBUTE] as number) : 0;
  if (typeof item.spend_nanos === 'number') record.spend_nanos = item.spend_nanos - reserved;
  record.metadata = parseMetadata(item.metadata);
  record.models ??= [];
  record.allowed_operations ??= [];
  record.allowed_routes ??= [];
  record.spend_nanos ??= 0;
  record.blocked ??= false;
  return record as unknown as KeyRecord;
}

function parseMetadata(value: unknown): JsonObject {
  if (typeof value !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(value);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as JsonObject) : {};
  } catch {
    return {};
  }
}

function aliasKey(alias: string): ItemKey {
  return { pk: aliasPartition(alias), sk: ALIAS_SORT_KEY };
}

function stripLifecycle(record: KeyRecord): KeyRecord {
  const { superseded_by: _next, superseded_at: _at, ttl: _ttl, ...rest } = record;
  // The tombstone's ttl is not the key's: recompute it from `expires`.
  return { ...rest, ...(rest.expires ? { ttl: expiryTtl(Date.parse(rest.expires)) } : {}) };
}

function buildRecord(token: string, keyName: string, changes: KeyChanges, now: number): KeyRecord {
  const base: KeyRecord = {
    token,
    key_name: keyName,
    models: [],
    allowed_operations: [],
    allowed_routes: [],
    spend_nanos: 0,
    metadata: {},
    blocked: false,
    created_at: iso(now),
    updated_at: iso(now),
  };
  return applyChanges(base, changes, now);
}

/**
 * What a validated change set writes, attribute by attribute, in the record's terms (LiteLLM's
 * /key/update semantics: null clears, absent keeps). `undefined` removes the attribute. Both
 * kinds of write derive from it: whole items (create, regenerate) and UpdateItem (update, block).
 */
function changedAttributes(changes: KeyChanges, now: number): Array<readonly [attribute: string, value: unknown]> {
  const written: Array<readonly [string, unknown]> = [];
  const write = (attribute: string, value: unknown) => written.push([attribute, value ?? undefined]);
  for (const [field, value] of Object.entries(changes) as Array<[keyof KeyChanges, unknown]>) {
    switch (field) {
      case 'models':
      case 'allowed_operations':
      case 'allowed_routes':
        write(field, value ?? []);
        break;
      case 'metadata':
        write('metadata', value ?? {});
        break;
      case 'spend':
        // Settled spend, as a record shows it (the item's spend_nanos also holds the reservations).
        write('spend_nanos', usdToNanos(value as number));
        break;
      case 'duration': {
        const expires = value === null ? undefined : addDuration(now, parseDuration(value as string)!);
        write('expires', expires === undefined ? undefined : iso(expires));
        write(TABLE_SCHEMA.ttlAttribute, expires === undefined ? undefined : expiryTtl(expires));
        break;
      }
      case 'budget_duration':
        write('budget_duration', value);
        write('budget_reset_at', value === null ? undefined : iso(addDuration(now, parseDuration(value as string)!)));
        break;
      default:
        write(field, value);
    }
  }
  return written;
}

/** A record with a change set applied, for writes of whole items (create, regenerate). */
function applyChanges(base: KeyRecord, changes: KeyChanges, now: number): KeyRecord {
  const next: Record<string, unknown> = { ...base };
  for (const [attribute, value] of changedAttributes(changes, now)) {
    if (value === undefined) delete next[attribute];
    else next[attribute] = value;
  }
  return next as unknown as KeyRecord;
}

/** The same change set as an UpdateItem that touches only the changed attributes (never spend, unless asked: the ledger ADDs to it concurrently). */
function changeUpdate(changes: KeyChanges, now: number): Update {
  const update = new Update();
  for (const [attribute, value] of changedAttributes(changes, now)) {
    if (attribute === 'spend_nanos') {
      // Reservations of calls in flight stay inside spend_nanos (lambda/accounting/budget.ts).
      update.set('spend_nanos', plus(ifNotExists(RESERVED_ATTRIBUTE, 0), value as number));
    } else {
      update.setOrRemove(attribute, attribute === 'metadata' && value !== undefined ? encodeMetadata(value as JsonObject) : value);
    }
  }
  return update.set('updated_at', iso(now));
}

/** Arbitrary JSON as a string: no DynamoDB limits on depth, empty sets or number ranges apply. */
function encodeMetadata(metadata: JsonObject): string {
  return JSON.stringify(metadata);
}

function expiryTtl(expiresMs: number): number {
  return Math.ceil(expiresMs / 1000) + EXPIRED_KEY_RETENTION_SECONDS;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Enough of a token to tell keys apart in messages (tokens are not secret, but long). */
export function shortToken(token: string): string {
  return `${token.slice(0, 12)}…`;
}
