// What doctor found: one row per host × step, the lines to send to IT, and the report as text for a ticket.

/** OK passes, WARN passes with a remark, FAIL makes doctor exit 1, SKIP was not tried (an earlier step failed, or not applicable). */
export type StepStatus = 'OK' | 'WARN' | 'FAIL' | 'SKIP'

export type StepName = 'DNS' | 'TCP' | 'CONNECT' | 'TLS' | 'HTTP' | 'CLOCK' | 'TOKEN'

/** One finding: a host (`helseid-sts.nhn.no:443`) or tenant, one step, its result and a short reason. */
export interface DoctorRow {
  readonly subject: string
  readonly step: StepName
  readonly status: StepStatus
  readonly detail: string
}

export interface DoctorReport {
  /** What was checked and how (config file, route, hosts and their roles). */
  readonly preamble: readonly string[]
  readonly rows: readonly DoctorRow[]
  /** Requests to IT, one per blocked host:port or broken name, without repeats. */
  readonly askIt: readonly string[]
}

/** True when no row failed. */
export function isHealthy (report: DoctorReport): boolean {
  return report.rows.every(row => row.status !== 'FAIL')
}

/** The report as lines of plain text: preamble, an aligned table, and what to ask IT. */
export function formatDoctorReport (report: DoctorReport): string[] {
  const header = { subject: 'HOST / TENANT', step: 'STEP', status: 'RESULT', detail: 'DETAIL' }
  const all = [header, ...report.rows]
  const subjectWidth = Math.max(...all.map(row => row.subject.length))
  const stepWidth = Math.max(...all.map(row => row.step.length))
  const statusWidth = Math.max(...all.map(row => row.status.length))
  const table = all.map(row => `${row.subject.padEnd(subjectWidth)}  ${row.step.padEnd(stepWidth)}  ${row.status.padEnd(statusWidth)}  ${row.detail}`.trimEnd())
  const failed = report.rows.filter(row => row.status === 'FAIL').length
  const warned = report.rows.filter(row => row.status === 'WARN').length
  const verdict = failed === 0
    ? `All checks passed${warned === 0 ? '' : ` (${warned} warning${warned === 1 ? '' : 's'})`}.`
    : `${failed} check${failed === 1 ? '' : 's'} failed${warned === 0 ? '' : `, ${warned} warning${warned === 1 ? '' : 's'}`}.`
  const askIt = report.askIt.length > 0
    ? ['', 'What to ask IT:', ...report.askIt.map(line => `  ${line}`)]
    : failed > 0 ? ['', 'Nothing to ask IT for the network: the failures above are in the configuration, the key, HelseID or the API.'] : []
  return [...report.preamble, '', ...table, '', verdict, ...askIt]
}
