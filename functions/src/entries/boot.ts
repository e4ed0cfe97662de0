import { ConfigError, loadConfig, requireServingSecrets } from "../config.js";

/**
 * Loads the configuration for a process entry. A bad configuration prints one line naming the
 * variable and exits with status 2 (no stack trace).
 */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env) {
  try {
    return requireServingSecrets(loadConfig(env));
  } catch (err) {
    exitOnConfigError(err);
  }
}

/** A ConfigError prints its one line and exits with status 2; anything else is thrown on. */
export function exitOnConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`prefloop: configuration error: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
