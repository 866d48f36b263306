export interface ConfigIssue {
  /** `file:line` (or just the file when the position is unknown). */
  readonly location: string;
  /** Dotted key path, e.g. `providers.0.timeout_ms`. */
  readonly path: string;
  readonly message: string;
}

/**
 * Startup stops with exit code 2 and every issue printed, not only the first. Not a GatewayError on purpose:
 * it is never an HTTP answer (a reload that fails keeps the old config and reports these issues as data), and
 * GatewayError's status/type/code describe HTTP answers only.
 */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** `file:line key.path: message`, as a start and a refused reload print an issue. */
export function formatIssue(issue: ConfigIssue): string {
  return issue.path === ""
    ? `${issue.location}: ${issue.message}`
    : `${issue.location} ${issue.path}: ${issue.message}`;
}
