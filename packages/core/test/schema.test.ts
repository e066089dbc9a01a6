import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { jobSpecJsonSchema } from '@dsg/core';

// dist/test/schema.test.js → repository root is four levels up.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

it('the committed JSON Schema matches the validator (regenerate with `npx dsg spec schema > schema/job-spec-v1.json`)', () => {
  const committed = JSON.parse(readFileSync(join(root, 'schema', 'job-spec-v1.json'), 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(jobSpecJsonSchema())));
});

it('the schema lists every top-level field and forbids unknown ones', () => {
  const s = jobSpecJsonSchema() as { properties: Record<string, unknown>; additionalProperties: unknown; required: string[] };
  for (const f of ['name', 'script', 'command', 'array', 'resources', 'inputs', 'outputs', 'timeout', 'retries', 'env'])
    assert.ok(f in s.properties, f);
  assert.equal(s.additionalProperties, false);
  assert.deepEqual(s.required, ['name']);
});

it('the committed workflow JSON Schema matches the validator (regenerate with `npx dsg spec schema --workflow > schema/workflow-spec-v1.json`)', async () => {
  const { workflowSpecJsonSchema } = await import('@dsg/core');
  const committed = JSON.parse(readFileSync(join(root, 'schema', 'workflow-spec-v1.json'), 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(workflowSpecJsonSchema())));
});
