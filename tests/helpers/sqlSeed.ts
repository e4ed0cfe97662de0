/**
 * Seeding a PostgreSQL database in SQL, fast enough for load: a base model, prompt sets, ready or
 * served pairs with their succeeded generations, and voters with their cookies. Used by the
 * benchmarks and the fault tests that drive a real server.
 */
import type pg from "pg";
import { voterCookieHeader } from "../../functions/src/api/voterCookie.js";
import { csrfToken } from "../../functions/src/domain/voteToken.js";
import type { Signer } from "../../functions/src/platform/signing.js";

/** Seeds a prompt set and `count` ready pairs (served to the bench voters when `servedToVoters`), in SQL. */
export async function seedPairs(
  c: pg.Client,
  tag: string,
  count: number,
  servedToVoters: boolean,
  voters: number,
): Promise<void> {
  await c.query(
    `insert into base_models (id, name, family, sha256, width, height) values ('bench-model', 'bench', 'sd15', '0', 512, 512)
     on conflict do nothing`,
  );
  await c.query(
    `insert into prompt_sets (id, name, source) values ($1, $1, 'bench') on conflict do nothing`,
    [tag],
  );
  await c.query(
    `insert into prompts (id, prompt_set_id, text, category, source)
     select $1 || '-pr-' || g, $1, 'bench prompt ' || g, 'Bench', 'bench' from generate_series(0, 499) g
     on conflict do nothing`,
    [tag],
  );
  await c.query(
    `insert into generations (id, prompt_id, base_model_id, seed, sampler, steps, guidance, width, height, status, blob_key)
     select $1 || '-g-' || g || '-' || s, $1 || '-pr-' || (g % 500), 'bench-model', (g * 2 + case when s = 'a' then 0 else 1 end)::text, 'ddim', 20, 7.5,
            512, 512, 'succeeded', 'bench/' || $1 || '/' || g || '-' || s || '.png'
     from generate_series(0, $2::int - 1) g, (values ('a'), ('b')) as side(s)`,
    [tag, count],
  );
  await c.query(
    `insert into pairs (id, prompt_id, generation_a_id, generation_b_id, prompt_set_id,
                        served_to_voter_id, served_at, left_is, created_at)
     select $1 || '-p-' || g, $1 || '-pr-' || (g % 500), $1 || '-g-' || g || '-a', $1 || '-g-' || g || '-b', $1,
            case when $3 then 'bench-voter-' || (g % ${voters}) end, case when $3 then now() end,
            case when $3 then (case when g % 2 = 0 then 'a' else 'b' end) end,
            now() - interval '1 day' + g * interval '1 millisecond'
     from generate_series(0, $2::int - 1) g`,
    [tag, count, servedToVoters],
  );
}

export interface BenchVoter {
  id: string;
  cookie: string;
  csrf: string;
}

/** Inserts `count` voters (`bench-voter-<n>`); returns their cookies and CSRF tokens. */
export async function seedVoters(c: pg.Client, count: number, signer: Signer): Promise<BenchVoter[]> {
  await c.query(
    `insert into voters (id) select 'bench-voter-' || g from generate_series(0, ${count - 1}) g on conflict do nothing`,
  );
  return Promise.all(
    Array.from({ length: count }, async (_, v) => {
      const id = `bench-voter-${v}`;
      return { id, cookie: await voterCookieHeader(signer, id), csrf: csrfToken(signer, id) };
    }),
  );
}
