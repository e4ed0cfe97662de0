/**
 * The tiny model's caption grammar as a prompt set: every caption, its shape as the category, and
 * whether it was held out of the model's training as the challenge.
 */
import { allScenes, captionOf, isHeldout } from "./shapes/index.js";

export interface ShapesPrompt {
  text: string;
  category: string;
  challenge: "held-out" | "in-training";
}

export function shapesPromptSet(opts: { heldoutOnly?: boolean } = {}): {
  name: string;
  items: ShapesPrompt[];
} {
  const items = allScenes()
    .map((scene): ShapesPrompt => {
      const text = captionOf(scene);
      return { text, category: scene.shape, challenge: isHeldout(text) ? "held-out" : "in-training" };
    })
    .filter((p) => !opts.heldoutOnly || p.challenge === "held-out");
  return { name: opts.heldoutOnly ? "shapes-heldout" : "shapes", items };
}
