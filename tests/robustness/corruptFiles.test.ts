/**
 * Corrupt files meet clear errors: a truncated or bit-flipped safetensors adapter is refused with
 * a `SafeTensorsError` naming what is wrong (never a RangeError from reading past the end), an
 * "ONNX" file that is not one fails the model load with the file named, and a Parquet snapshot
 * missing required columns is refused by the trainer's reader with the columns named.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../functions/src/config.js";
import { SdPipeline } from "../../functions/src/inference/pipeline.js";
import {
  parseSafetensors,
  SafeTensorsError,
  serializeSafetensors,
} from "../../functions/src/inference/safetensors.js";

const scratch = mkdtempSync(join(tmpdir(), "prefloop-corrupt-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("corrupt files", () => {
  const adapter = serializeSafetensors(
    {
      "unet.down.0.lora_A.weight": {
        shape: [4, 8],
        data: Float32Array.from({ length: 32 }, (_, i) => i / 7),
      },
      "unet.down.0.lora_B.weight": {
        shape: [8, 4],
        data: Float32Array.from({ length: 32 }, (_, i) => -i / 5),
      },
    },
    { rank: "4" },
  );

  it("a safetensors file cut anywhere is refused with a SafeTensorsError", () => {
    expect(parseSafetensors(adapter).tensors.size).toBe(2);
    for (let cut = 0; cut < adapter.length; cut++) {
      expect(() => parseSafetensors(adapter.subarray(0, cut)), `cut at ${cut}`).toThrow(SafeTensorsError);
    }
  });

  it("random byte damage either parses to a consistent file or fails with a SafeTensorsError", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: adapter.length - 1 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (damage) => {
          const bytes = adapter.slice();
          for (const [at, value] of damage) bytes[at] = value;
          try {
            const parsed = parseSafetensors(bytes);
            for (const t of parsed.tensors.values()) {
              expect(t.data.length).toBe(t.shape.reduce((a: number, b: number) => a * b, 1));
            }
          } catch (err) {
            expect(err).toBeInstanceOf(SafeTensorsError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("an ONNX file that is not one fails the model load, naming the file", async () => {
    const dir = join(scratch, "not-onnx");
    cpSync(join(repoRoot, "tests/fixtures/inference/micro-sd/onnx"), dir, { recursive: true });
    const manifest = JSON.parse(execFileSync("cat", [join(dir, "manifest.json")], { encoding: "utf8" })) as {
      components: { unet: { file: string } };
    };
    writeFileSync(join(dir, manifest.components.unet.file), "this is not an ONNX model");
    await expect(SdPipeline.load(dir, { intraOpThreads: 1 })).rejects.toThrow(
      new RegExp(manifest.components.unet.file.replace(/[.]/g, "\\.")),
    );
  });

  it("a Parquet snapshot without the required columns is refused by the trainer's reader, columns named", () => {
    const dir = join(scratch, "snapshot");
    const python = join(repoRoot, ".venv/bin/python");
    const script = `
import sys, pyarrow as pa, pyarrow.parquet as pq, os
os.makedirs(sys.argv[1], exist_ok=True)
pq.write_table(pa.table({"caption": ["a red circle"], "label_0": [1.0]}), os.path.join(sys.argv[1], "train-00000.parquet"))
from prefloop_worker.data.snapshot import read_snapshot
try:
    read_snapshot(sys.argv[1])
except ValueError as e:
    print("refused:", e)
    sys.exit(3)
print("read")
`;
    let out = "";
    let status = 0;
    try {
      out = execFileSync(python, ["-c", script, dir], {
        encoding: "utf8",
        cwd: join(repoRoot, "gpu-worker"),
        env: { ...process.env, PYTHONPATH: join(repoRoot, "gpu-worker/src") },
      });
    } catch (err) {
      status = (err as { status: number }).status;
      out = String((err as { stdout: string }).stdout);
    }
    expect(status).toBe(3);
    expect(out).toMatch(/missing columns/);
    expect(out).toMatch(/jpg_0/);
  });
});
