/**
 * The onnxruntime execution provider the inference sessions run on (INFERENCE_EXECUTION_PROVIDER).
 * `cuda` asks for the CUDA provider, with the CPU provider for any node CUDA does not cover. When
 * the CUDA provider cannot be used — this onnxruntime-node build has no CUDA provider libraries
 * (installed with ONNXRUNTIME_NODE_INSTALL=cuda12), or the machine has no usable GPU, CUDA 12 or
 * cuDNN 9 — creating a session with it throws, and the sessions are created on the CPU instead.
 */
import * as ort from "onnxruntime-node";
import type { ExecutionProvider } from "../config.js";

export type { ExecutionProvider };

/** What was asked for, what the sessions run on, and why the two differ when they do. */
export interface ProviderChoice {
  requested: ExecutionProvider;
  provider: ExecutionProvider;
  /** The error that made `cuda` fall back to `cpu` (its first line). */
  fallbackReason?: string;
}

/** onnxruntime's provider list for a choice, in order of preference. */
export function executionProviders(provider: ExecutionProvider): ExecutionProvider[] {
  return provider === "cuda" ? ["cuda", "cpu"] : ["cpu"];
}

function create(file: string, options: ort.InferenceSession.SessionOptions, provider: ExecutionProvider) {
  return ort.InferenceSession.create(file, { ...options, executionProviders: executionProviders(provider) });
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split("\n")[0] ?? message).trim();
}

/**
 * One session per model file, in order, on the `requested` provider. Whether CUDA can be used is
 * decided by the first file: when it cannot be opened with CUDA but opens on the CPU, every session
 * is created on the CPU; when it fails on the CPU too, that error (the model's) is thrown. Sessions
 * already created are released when a later one fails.
 */
export async function createSessions(
  files: readonly string[],
  options: ort.InferenceSession.SessionOptions,
  requested: ExecutionProvider,
): Promise<{ sessions: ort.InferenceSession[]; choice: ProviderChoice }> {
  const [head, ...rest] = files;
  if (head === undefined) throw new Error("createSessions needs at least one model file");
  let choice: ProviderChoice = { requested, provider: requested };
  let first: ort.InferenceSession;
  try {
    first = await create(head, options, requested);
  } catch (err) {
    if (requested === "cpu") throw err;
    first = await create(head, options, "cpu");
    choice = { requested, provider: "cpu", fallbackReason: firstLine(err) };
  }
  const sessions = [first];
  try {
    for (const file of rest) sessions.push(await create(file, options, choice.provider));
  } catch (err) {
    await Promise.allSettled(sessions.map((s) => s.release()));
    throw err;
  }
  return { sessions, choice };
}
