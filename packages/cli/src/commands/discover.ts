import type { Command } from 'commander';
import { info } from '../context.js';
import { discover, SUPPORTED_API } from '../discovery.js';
import { parsePositiveNumber } from './parse-flags.js';

export function registerDiscover(program: Command): void {
  program
    .command('discover')
    .description('list DSG coordinators advertising themselves on this LAN (mDNS/DNS-SD, _dsg._tcp)')
    .option('--json', 'print the grids found as a JSON array')
    .option('--timeout <seconds>', 'how long to listen for answers', '3')
    .addHelpText('after', '\nA coordinator started with `dsg up` advertises itself unless it listens on loopback only or was started\nwith --no-advertise. Networks that block multicast (many guest and campus Wi-Fi networks) hide it: then use\n--coordinator URL.\n\nExample:\n  dsg discover --timeout 5')
    .action(async (f: { json?: boolean; timeout: string }) => {
      const seconds = parsePositiveNumber(f.timeout, '--timeout');
      const grids = await discover(seconds * 1000);
      if (f.json) {
        process.stdout.write(`${JSON.stringify(grids, null, 2)}\n`);
        return;
      }
      if (grids.length === 0) {
        info(`no coordinator answered within ${seconds}s. Is one running (\`dsg up\`) on this network? Multicast may be blocked here: use --coordinator URL`);
        return;
      }
      for (const g of grids) {
        process.stdout.write(`${g.name}\t${g.url}\tid ${g.gridId}\t${g.tls ? `tls ${g.tlsFingerprint ?? '(fingerprint not advertised)'}` : 'no tls'}${g.api !== SUPPORTED_API ? `\tAPI ${g.api} (this CLI speaks ${SUPPORTED_API})` : ''}\n`);
      }
      if (grids.length > 1) info(`join one with: dsg agent --grid NAME`);
    });
}
