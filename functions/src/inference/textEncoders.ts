/**
 * Prompt → UNet conditioning, per pipeline family, as diffusers' pipelines compute it:
 * - SD 1.x/2.x (`StableDiffusionPipeline.encode_prompt`): the text encoder's `last_hidden_state`.
 * - SDXL (`StableDiffusionXLPipeline.encode_prompt`, clip_skip unset): both encoders' penultimate
 *   hidden states concatenated on the feature axis, and the second (projection) encoder's
 *   `text_embeds` as the pooled embedding. With `force_zeros_for_empty_prompt`, "no negative
 *   prompt" is all zeros, not an encoded empty string.
 */
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import type { ModelManifest, TokenizerManifest } from "./model.js";
import { ClipTokenizer } from "./tokenizer.js";

/** One prompt's conditioning: hidden [seq, hiddenSize] and, for SDXL, pooled [pooledSize]. */
export interface PromptEmbedding {
  hidden: Float32Array;
  pooled: Float32Array | null;
}

export interface TextEncoders {
  /** Tokens per prompt (77 for CLIP). */
  readonly sequenceLength: number;
  /** The pooled embedding's size; 0 when the UNet takes none (SD 1.x/2.x). */
  readonly pooledSize: number;
  /** The tokenizer of the first encoder. */
  readonly tokenizer: ClipTokenizer;
  encode(prompts: readonly string[]): Promise<PromptEmbedding[]>;
  /**
   * The unconditional input of guidance when there is no negative prompt (empty string): zeros
   * for SDXL models with `force_zeros_for_empty_prompt`, else null (encode "" instead).
   */
  zeroUnconditional(): PromptEmbedding | null;
}

export async function loadTokenizer(dir: string, t: TokenizerManifest): Promise<ClipTokenizer> {
  return ClipTokenizer.fromFile(join(dir, t.file), {
    maxLength: t.max_length,
    bosTokenId: t.bos_token_id ?? undefined,
    eosTokenId: t.eos_token_id ?? undefined,
    padTokenId: t.pad_token_id ?? undefined,
  });
}

/** Runs one encoder on a batch; returns the named outputs split per prompt. */
async function runEncoder(
  session: ort.InferenceSession,
  tokenizer: ClipTokenizer,
  prompts: readonly string[],
  outputs: readonly string[],
): Promise<Float32Array[][]> {
  const ids = tokenizer.encodeBatch(prompts);
  const out = await session.run({
    input_ids: new ort.Tensor("int64", ids, [prompts.length, tokenizer.maxLength]),
  });
  return outputs.map((name) => {
    const tensor = out[name] as ort.Tensor | undefined;
    if (!tensor) throw new Error(`text encoder has no output ${name}`);
    const data = tensor.data as Float32Array;
    const per = data.length / prompts.length;
    return prompts.map((_, i) => data.slice(i * per, (i + 1) * per));
  });
}

export class SdTextEncoder implements TextEncoders {
  readonly pooledSize = 0;

  constructor(
    readonly tokenizer: ClipTokenizer,
    private readonly session: ort.InferenceSession,
  ) {}

  get sequenceLength(): number {
    return this.tokenizer.maxLength;
  }

  async encode(prompts: readonly string[]): Promise<PromptEmbedding[]> {
    const [hidden] = await runEncoder(this.session, this.tokenizer, prompts, ["last_hidden_state"]);
    return (hidden as Float32Array[]).map((h) => ({ hidden: h, pooled: null }));
  }

  zeroUnconditional(): null {
    return null;
  }
}

export class SdxlTextEncoders implements TextEncoders {
  private readonly zeros: PromptEmbedding | null;

  constructor(
    readonly tokenizer: ClipTokenizer,
    private readonly tokenizer2: ClipTokenizer,
    private readonly session: ort.InferenceSession,
    private readonly session2: ort.InferenceSession,
    sizes: { hidden: number; pooled: number; forceZerosForEmptyPrompt: boolean },
  ) {
    if (tokenizer.maxLength !== tokenizer2.maxLength) {
      throw new Error(
        `the SDXL tokenizers disagree on the sequence length (${tokenizer.maxLength} vs ${tokenizer2.maxLength})`,
      );
    }
    this.pooledSize = sizes.pooled;
    this.zeros = sizes.forceZerosForEmptyPrompt
      ? {
          hidden: new Float32Array(tokenizer.maxLength * sizes.hidden),
          pooled: new Float32Array(sizes.pooled),
        }
      : null;
  }

  readonly pooledSize: number;

  static fromManifest(
    manifest: ModelManifest,
    tokenizers: [ClipTokenizer, ClipTokenizer],
    sessions: [ort.InferenceSession, ort.InferenceSession],
  ): SdxlTextEncoders {
    const size = (shape: (number | string)[] | undefined, axis: number, what: string): number => {
      const n = Number(shape?.[axis]);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`the SDXL manifest names no size for ${what}`);
      return n;
    };
    const unet = manifest.components.unet.inputs;
    return new SdxlTextEncoders(tokenizers[0], tokenizers[1], sessions[0], sessions[1], {
      hidden: size(unet?.encoder_hidden_states?.shape, 2, "the UNet's encoder_hidden_states"),
      pooled: size(unet?.text_embeds?.shape, 1, "the UNet's text_embeds"),
      forceZerosForEmptyPrompt: manifest.force_zeros_for_empty_prompt ?? true,
    });
  }

  get sequenceLength(): number {
    return this.tokenizer.maxLength;
  }

  async encode(prompts: readonly string[]): Promise<PromptEmbedding[]> {
    const [[first], [second, pooled]] = await Promise.all([
      runEncoder(this.session, this.tokenizer, prompts, ["penultimate_hidden_state"]),
      runEncoder(this.session2, this.tokenizer2, prompts, ["penultimate_hidden_state", "text_embeds"]),
    ]);
    const seq = this.sequenceLength;
    return prompts.map((_, i) => {
      const a = (first as Float32Array[])[i] as Float32Array;
      const b = (second as Float32Array[])[i] as Float32Array;
      const da = a.length / seq;
      const db = b.length / seq;
      const hidden = new Float32Array(seq * (da + db));
      for (let t = 0; t < seq; t++) {
        hidden.set(a.subarray(t * da, (t + 1) * da), t * (da + db));
        hidden.set(b.subarray(t * db, (t + 1) * db), t * (da + db) + da);
      }
      return { hidden, pooled: (pooled as Float32Array[])[i] as Float32Array };
    });
  }

  zeroUnconditional(): PromptEmbedding | null {
    return this.zeros;
  }
}
