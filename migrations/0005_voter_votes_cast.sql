ALTER TABLE "voters" ADD COLUMN "votes_cast" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- voters.votes_cast follows votes: one update per voter and statement, taken in id order so that
-- two statements writing votes of the same voters never deadlock.
CREATE FUNCTION "voters_votes_cast_add"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT voter_id, count(*)::int AS n FROM new_votes GROUP BY voter_id ORDER BY voter_id LOOP
    UPDATE voters SET votes_cast = votes_cast + r.n WHERE id = r.voter_id;
  END LOOP;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE FUNCTION "voters_votes_cast_remove"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT voter_id, count(*)::int AS n FROM old_votes GROUP BY voter_id ORDER BY voter_id LOOP
    UPDATE voters SET votes_cast = votes_cast - r.n WHERE id = r.voter_id;
  END LOOP;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER "votes_count_insert" AFTER INSERT ON "votes" REFERENCING NEW TABLE AS new_votes
  FOR EACH STATEMENT EXECUTE FUNCTION "voters_votes_cast_add"();--> statement-breakpoint
CREATE TRIGGER "votes_count_delete" AFTER DELETE ON "votes" REFERENCING OLD TABLE AS old_votes
  FOR EACH STATEMENT EXECUTE FUNCTION "voters_votes_cast_remove"();--> statement-breakpoint
UPDATE "voters" SET "votes_cast" = c.n FROM (SELECT voter_id, count(*)::int AS n FROM "votes" GROUP BY voter_id) c
  WHERE "voters"."id" = c.voter_id;
