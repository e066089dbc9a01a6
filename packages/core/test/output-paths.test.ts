// Which uploaded paths a job's declared output globs admit (the coordinator's check on output uploads).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { outputPathMatcher } from '@dsg/core';

describe('outputPathMatcher', () => {
  const cases: Array<[globs: string[], path: string, admitted: boolean]> = [
    [['out/*'], 'out/result.txt', true],
    [['out/*'], 'out/sub/result.txt', false],
    [['out/**'], 'out/sub/result.txt', true],
    [['./out/*.json'], 'out/a.json', true],
    [['result.txt'], 'result.txt', true],
    [['result.txt'], 'secret/credentials.json', false],
    [['*'], 'credentials.json', true],
    [['out/*'], 'out/../credentials.json', false],
    [['**'], '../credentials.json', false],
    [['**'], '/etc/passwd', false],
    [['**'], 'out//x', false],
    [['**'], 'out/./x', false],
    [['**'], 'a\\b', false],
    [[], 'anything', false],
    [['a.txt', 'b/*'], 'b/c', true],
  ];
  for (const [globs, path, admitted] of cases)
    it(`${JSON.stringify(globs)} ${admitted ? 'admits' : 'refuses'} ${JSON.stringify(path)}`, () => {
      assert.equal(outputPathMatcher(globs)(path), admitted);
    });
});
