import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { ENDPOINT_TABLE_BEGIN, ENDPOINT_TABLE_END, endpointTableMarkdown } from '../../lambda/routes/endpoint-table.js';

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
const endpoints = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'endpoints.md'), 'utf8');

it('docs/endpoints.md is the table generated from the route table (npm run readme:endpoints), and the README links it', () => {
  assert.match(readme, /\(docs\/endpoints\.md\)/);
  const start = endpoints.indexOf(ENDPOINT_TABLE_BEGIN);
  const end = endpoints.indexOf(ENDPOINT_TABLE_END);
  assert.ok(start !== -1 && end > start, 'endpoint table markers present');
  const shown = endpoints.slice(start + ENDPOINT_TABLE_BEGIN.length, end).trim();
  assert.equal(shown, endpointTableMarkdown());
});

it('the README shows both set-up commands of the contract', () => {
  assert.match(readme, /npm ci && npm start/);
  assert.match(readme, /npm ci && npm test/);
});
