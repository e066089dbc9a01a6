/**
 * The text of the service definitions `dsg agent install` writes: a systemd unit (Linux), a launchd plist (macOS)
 * and a Task Scheduler XML (Windows). Pure functions, so the generated text is tested on any machine; only the
 * systemd unit was run here (see README: which platforms were verified). Secrets never go into these files: the
 * join token lives in a separate environment file readable by its owner only.
 */
export type ServiceScope = 'user' | 'system';

export interface ServicePlan {
  readonly scope: ServiceScope;
  /** The program and arguments that start the agent (node + dsg.js + `agent` + flags), absolute paths. */
  readonly argv: readonly string[];
  /** KEY=value lines with DSG_COORDINATOR / DSG_JOIN_TOKEN, kept in a 0600 file beside the unit. */
  readonly envFile: string;
  readonly stateDir: string;
}

export const SERVICE_NAME = 'dsg-agent';

/** systemd quotes: arguments with spaces, quotes, backslashes or % are double-quoted, % doubled (specifiers). */
const sdQuote = (a: string): string => {
  const s = a.replace(/%/g, '%%');
  return /[\s"'\\;$]/.test(s) ? `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` : s;
};

export function systemdUnit(p: ServicePlan): string {
  return [
    '[Unit]',
    'Description=Distributed Science Grid agent (volunteers this machine to a DSG coordinator)',
    'Documentation=https://github.com/dsg/dsg#volunteering-a-machine-install-as-a-service',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `EnvironmentFile=${p.envFile}`,
    `ExecStart=${p.argv.map(sdQuote).join(' ')}`,
    // SIGTERM to the agent only: it stops its tasks itself and reports them (requeued at once), then exits.
    'KillMode=mixed',
    'TimeoutStopSec=60',
    'Restart=on-failure',
    'RestartSec=10',
    // The agent places tasks in cgroups of their own: it needs its subtree delegated.
    'Delegate=yes',
    ...(p.scope === 'system' ? ['Nice=10'] : []),
    '',
    '[Install]',
    `WantedBy=${p.scope === 'system' ? 'multi-user.target' : 'default.target'}`,
    '',
  ].join('\n');
}

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** launchd has no environment file: the plist runs `/bin/sh -c '. ENVFILE; exec ARGV'`. Unverified here. */
export function launchdPlist(p: ServicePlan, logDir: string): string {
  const shq = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
  const cmd = `set -a; . ${shq(p.envFile)}; set +a; exec ${p.argv.map(shq).join(' ')}`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>org.dsg.agent</string>
  <key>ProgramArguments</key>
  <array><string>/bin/sh</string><string>-c</string><string>${xml(cmd)}</string></array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
  <key>ProcessType</key><string>Background</string>
  <key>StandardOutPath</key><string>${xml(`${logDir}/agent.log`)}</string>
  <key>StandardErrorPath</key><string>${xml(`${logDir}/agent.log`)}</string>
</dict>
</plist>
`;
}

/** Windows Task Scheduler: start at logon (user) or boot (system), restart on failure. Unverified here. */
export function windowsTaskXml(p: ServicePlan): string {
  const [program, ...args] = p.argv;
  const winq = (a: string): string => (/[\s"]/.test(a) ? `"${a.replace(/"/g, '\\"')}"` : a);
  return `<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo><Description>Distributed Science Grid agent</Description></RegistrationInfo>
  <Triggers>${p.scope === 'system' ? '<BootTrigger><Enabled>true</Enabled></BootTrigger>' : '<LogonTrigger><Enabled>true</Enabled></LogonTrigger>'}</Triggers>
  <Principals><Principal id="Author">${p.scope === 'system' ? '<UserId>S-1-5-18</UserId><RunLevel>HighestAvailable</RunLevel>' : '<LogonType>InteractiveToken</LogonType><RunLevel>LeastPrivilege</RunLevel>'}</Principal></Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <RestartOnFailure><Interval>PT1M</Interval><Count>999</Count></RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec><Command>${xml(program ?? '')}</Command><Arguments>${xml(args.map(winq).join(' '))}</Arguments></Exec>
  </Actions>
</Task>
`;
}

export const windowsInstallCommand = (xmlPath: string): string => `schtasks /Create /TN "${SERVICE_NAME}" /XML "${xmlPath}" /F`;

export function envFileText(coordinator: string | undefined, joinToken: string | undefined): string {
  const bad = (v: string): boolean => /[\n\r]/.test(v);
  if ((coordinator && bad(coordinator)) || (joinToken && bad(joinToken))) throw new Error('values must be on one line');
  return [
    '# dsg agent service environment (written by `dsg agent install`; readable by its owner only)',
    ...(coordinator ? [`DSG_COORDINATOR=${coordinator}`] : []),
    ...(joinToken ? [`DSG_JOIN_TOKEN=${joinToken}`] : []),
    '',
  ].join('\n');
}
