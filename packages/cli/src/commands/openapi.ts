/** `dsg openapi`: the coordinator's OpenAPI 3.1 description of its REST API, to browse it or generate a client. */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { clientFrom, info, printJson, type GlobalFlags } from '../context.js';

export function registerOpenApi(program: Command, globals: () => GlobalFlags): void {
  program
    .command('openapi')
    .description('print the REST API\'s OpenAPI 3.1 description (JSON), e.g. to generate a client in another language')
    .option('-o, --out <file>', 'write it to this file instead of standard output')
    .addHelpText('after', `
The coordinator serves it at /api/v1/openapi.json (no token needed); this command fetches it from the coordinator
you use (its address and pinned certificate as for every command).

Examples:
  dsg openapi -o dsg-openapi.json
  dsg openapi | jq '.paths | keys'
  npx @openapitools/openapi-generator-cli generate -i dsg-openapi.json -g go -o dsg-go`)
    .action(async (opts: { out?: string }) => {
      const doc = await clientFrom(globals()).openApi();
      if (!opts.out) return printJson(doc);
      await writeFile(opts.out, `${JSON.stringify(doc, null, 2)}\n`);
      const paths = Object.keys((doc['paths'] ?? {}) as object).length;
      info(`wrote the OpenAPI ${String(doc['openapi'])} description of DSG API ${String((doc['info'] as { version?: string } | undefined)?.version)} (${paths} paths) to ${opts.out}`);
    });
}
