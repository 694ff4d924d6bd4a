-- Music Time Machine: the one source of truth for tables, indexes and triggers.
--
-- Idempotent: `flask --app app init-db` runs this whole file inside one transaction,
-- under an advisory lock, every time; a second run changes nothing. Works on
-- PostgreSQL 14+ (CREATE OR REPLACE TRIGGER), tested on 15 and 18.
--
-- Text columns are plain `text` on purpose: no length limit may truncate or reject a
-- real track, album or artist name. Constraints below are what keeps data honest.

-- No extensions needed (version 4's typo fallback replaced pg_trgm; databases that have it
-- keep it, unused).

-- Which version of this file the database has seen. Bump SCHEMA_VERSION in
-- database.py together with a new row here when the model changes.
CREATE TABLE IF NOT EXISTS schema_version (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO schema_version (version, description)
VALUES (1, 'users, tokens, artists, tracks, snapshots, library, plays, playlists'),
       (2, 'sync_runs; parse_release_date(), release_date_precision()'),
       (3, 'sync_runs.worker and heartbeat_at; playlist_tracks.added_at'),
       (4, 'search_words: the catalogue''s words, for typo-tolerant search'),
       (5, 'plays: every play with its facts and source; tracks.needs_enrichment'),
       (6, 'users.account_id; users.needs_relogin_since and invalid_grant_count'),
       (7, 'history_imports and history_import_files: data-export imports, their progress and fingerprints'),
       (9, 'background jobs: spotify_rate_budget, capture_state, play_gaps, sync_runs.job_id'),
       (10, 'users.session_version (server-revocable sessions); spotify_tokens.access_token_encrypted'),
       (11, 'users.data_version, catalogue_version, chart_cache: compute once per change'),
       (12, 'history_upload_files and history_upload_chunks: uploads in the database; history_imports.job_id')
ON CONFLICT (version) DO NOTHING;

-- Keeps updated_at true without every writer remembering to set it.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- Spotify release dates come as 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD' with a stated precision;
-- real data also has '0000', impossible days, and precisions the text does not carry.
-- release_date_precision() is what the text really supports (never finer than its length);
-- parse_release_date() is the first day of that, or NULL when it is not a real date, so one
-- bad album never aborts a sync or a migration.
CREATE OR REPLACE FUNCTION release_date_precision(value text, date_precision text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN value IS NULL OR value !~ '^\d{4}(-\d{2}(-\d{2})?)?$' THEN NULL
        WHEN length(value) = 4 OR date_precision = 'year' THEN 'year'
        WHEN length(value) = 7 OR date_precision = 'month' THEN 'month'
        ELSE 'day'
    END
$$;

CREATE OR REPLACE FUNCTION parse_release_date(value text, date_precision text) RETURNS date
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    precision_known text := release_date_precision(value, date_precision);
BEGIN
    IF precision_known IS NULL OR left(value, 4)::int < 1000 THEN
        RETURN NULL;
    END IF;
    RETURN CASE precision_known
        WHEN 'year' THEN make_date(left(value, 4)::int, 1, 1)
        WHEN 'month' THEN make_date(left(value, 4)::int, substr(value, 6, 2)::int, 1)
        ELSE make_date(left(value, 4)::int, substr(value, 6, 2)::int, substr(value, 9, 2)::int)
    END;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR numeric_value_out_of_range
               OR invalid_text_representation THEN
    RETURN NULL;
END;
$$;

-- One row per Spotify account. A migrated legacy database whose owner is not known
-- yet gets a placeholder row (is_placeholder) that the first login can claim.
CREATE TABLE IF NOT EXISTS users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    spotify_id     text NOT NULL UNIQUE CHECK (spotify_id <> ''),
    display_name   text,
    is_placeholder boolean NOT NULL DEFAULT false,
    last_login_at  timestamptz,
    last_synced_at timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- version 6: Spotify's account_id (May 2026), what accounts are linked by: stable for the
-- life of the account, unlike `id`. NULL for users from before it until their next login.
ALTER TABLE users ADD COLUMN IF NOT EXISTS account_id text CHECK (account_id <> '');
CREATE UNIQUE INDEX IF NOT EXISTS users_account_id_key ON users (account_id);
-- version 6: an invalid_grant is not always a revocation (Spotify has sent it for good
-- tokens during an incident), so the first one only marks the account and keeps the
-- encrypted refresh token; the count says whether a later retry confirmed it.
ALTER TABLE users ADD COLUMN IF NOT EXISTS needs_relogin_since timestamptz;
ALTER TABLE users ADD COLUMN IF NOT EXISTS invalid_grant_count integer NOT NULL DEFAULT 0
    CHECK (invalid_grant_count >= 0);
-- version 10: every session cookie carries the version it was issued under; logout, "log
-- out everywhere" and deleting the account move on from it, so a copied cookie opens
-- nothing afterwards (auth.py checks it on every signed-in request).
ALTER TABLE users ADD COLUMN IF NOT EXISTS session_version integer NOT NULL DEFAULT 0;

-- Server-side token storage: tokens never travel to the browser. Both tokens are
-- encrypted by the application before they get here.
CREATE TABLE IF NOT EXISTS spotify_tokens (
    user_id                  bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    access_token             text,   -- plain, only in rows written before version 10
    access_token_encrypted   bytea,
    refresh_token_encrypted  bytea,
    expires_at               timestamptz NOT NULL,
    scope                    text NOT NULL DEFAULT '',
    refresh_token_expires_at timestamptz,
    updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE TRIGGER spotify_tokens_set_updated_at
    BEFORE UPDATE ON spotify_tokens FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- version 10: the access token is encrypted like the refresh token (token_keys.py). Plain
-- ones from before are re-encrypted at their next write (they last an hour) or by
-- `flask --app app rotate-token-keys`; expired ones are useless and cleared here.
ALTER TABLE spotify_tokens ADD COLUMN IF NOT EXISTS access_token_encrypted bytea;
ALTER TABLE spotify_tokens ALTER COLUMN access_token DROP NOT NULL;
UPDATE spotify_tokens SET access_token = NULL WHERE access_token IS NOT NULL AND expires_at <= now();

CREATE TABLE IF NOT EXISTS artists (
    spotify_id text PRIMARY KEY CHECK (spotify_id <> ''),
    name       text NOT NULL,
    -- the whole provider payload; '{}' when the source never had one (legacy imports)
    raw_json   jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(raw_json) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE TRIGGER artists_set_updated_at
    BEFORE UPDATE ON artists FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Tracks are shared by every user: a track's facts do not depend on who listens.
CREATE TABLE IF NOT EXISTS tracks (
    spotify_id             text PRIMARY KEY CHECK (spotify_id <> ''),
    name                   text NOT NULL,
    artist_name            text,          -- every credited artist, comma separated
    primary_artist_id      text REFERENCES artists (spotify_id) ON DELETE SET NULL,
    album_name             text,
    duration_ms            integer CHECK (duration_ms >= 0),
    -- Spotify dates come as YYYY, YYYY-MM or YYYY-MM-DD; the date is padded to the
    -- first day and the precision says how much of it is real.
    release_date           date,
    release_date_precision text CHECK (release_date_precision IN ('year', 'month', 'day')),
    explicit               boolean,
    popularity             smallint CHECK (popularity BETWEEN 0 AND 100),
    spotify_url            text,
    raw_json               jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(raw_json) = 'object'),
    -- optional enrichment: new Spotify apps get 403 on audio features
    audio_features         jsonb CHECK (jsonb_typeof(audio_features) = 'object'),
    search_vector          tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(name, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(artist_name, '')), 'B') ||
        setweight(to_tsvector('english', coalesce(album_name, '')), 'C')
    ) STORED,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tracks_release_date_has_precision
        CHECK ((release_date IS NULL) = (release_date_precision IS NULL))
);
CREATE OR REPLACE TRIGGER tracks_set_updated_at
    BEFORE UPDATE ON tracks FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX IF NOT EXISTS tracks_search_vector_idx ON tracks USING gin (search_vector);
-- No GIN index on raw_json (version 4 drops the one earlier versions made): no query can
-- use it. Every per-person question reaches tracks by primary key from the person's
-- snapshots and library, and the dashboard's `raw_json @> ...` tests sit in aggregate
-- FILTER clauses, which no index serves. It cost every sync's track writes and most of
-- a migration's time (a GIN entry per JSON path of a ~2.5 kB payload).
DROP INDEX IF EXISTS tracks_raw_json_idx;
-- version 4: typo-tolerant search goes through search_words (below), not these
DROP INDEX IF EXISTS tracks_name_trgm_idx;
DROP INDEX IF EXISTS tracks_artist_name_trgm_idx;
CREATE INDEX IF NOT EXISTS tracks_release_date_idx ON tracks (release_date);
CREATE INDEX IF NOT EXISTS tracks_primary_artist_idx ON tracks (primary_artist_id);

-- Every distinct word of the catalogue's track, artist and album names, and for each the
-- "deletion variants" that make spelling correction a plain index lookup (symmetric
-- delete, as in SymSpell): a word is stored under itself and under each string left by
-- deleting one of its letters. A typed word one edit away from a real word (a letter
-- missing, extra, wrong or two swapped: "dancng", "atrist", "gess", "beyonce") shares a
-- variant with it, so the search fallback finds "dancing", "artist", "gees", "beyoncé"
-- through one btree probe per variant, where trigram similarity against a few hundred
-- thousand words or every name in a library costs 5-30 ms. Numbers are left out: "1234"
-- is not a misspelt "1235". Statement triggers keep both tables filled whoever writes
-- tracks (sync, migration, bulk loads). No unique keys on purpose: concurrent syncs
-- adding the same new word never wait on (or deadlock with) each other; a rare
-- duplicate is harmless.
CREATE TABLE IF NOT EXISTS search_words (word text NOT NULL);
CREATE INDEX IF NOT EXISTS search_words_word_idx ON search_words (word);
CREATE TABLE IF NOT EXISTS search_word_variants (variant text NOT NULL, word text NOT NULL);
CREATE INDEX IF NOT EXISTS search_word_variants_variant_idx ON search_word_variants (variant) INCLUDE (word);
CREATE OR REPLACE FUNCTION track_words(name text, artist_name text, album_name text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT word FROM unnest(tsvector_to_array(to_tsvector('simple', concat_ws(' ', name, artist_name, album_name))))
                     AS words(word)
    WHERE word !~ '^[0-9]+$'
$$;
-- the word itself and each one-letter deletion of it
CREATE OR REPLACE FUNCTION word_variants(word text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT word
    UNION
    SELECT left(word, i - 1) || substr(word, i + 1) FROM generate_series(1, length(word)) AS i
    WHERE length(word) > 1
$$;
-- the one way words enter the dictionary: new ones only, each with its variants
CREATE OR REPLACE FUNCTION remember_search_words(words text[]) RETURNS void
LANGUAGE sql AS $$
    WITH added AS (
        INSERT INTO search_words (word)
        SELECT DISTINCT w FROM unnest(words) AS w
        WHERE NOT EXISTS (SELECT FROM search_words s WHERE s.word = w)
        RETURNING word
    )
    INSERT INTO search_word_variants (variant, word)
    SELECT v.variant, a.word FROM added a, word_variants(a.word) AS v(variant);
$$;
CREATE OR REPLACE FUNCTION add_search_words() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM remember_search_words(ARRAY(
        SELECT DISTINCT w.word FROM written_tracks t, track_words(t.name, t.artist_name, t.album_name) AS w(word)));
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER tracks_add_search_words_after_insert
    AFTER INSERT ON tracks REFERENCING NEW TABLE AS written_tracks
    FOR EACH STATEMENT EXECUTE FUNCTION add_search_words();
CREATE OR REPLACE TRIGGER tracks_add_search_words_after_update
    AFTER UPDATE ON tracks REFERENCING NEW TABLE AS written_tracks
    FOR EACH STATEMENT EXECUTE FUNCTION add_search_words();
-- version 4, for databases created before it: collect the words of the tracks already there
SELECT remember_search_words(ARRAY(
    SELECT DISTINCT w.word FROM tracks t, track_words(t.name, t.artist_name, t.album_name) AS w(word)))
WHERE NOT EXISTS (SELECT FROM search_words);

-- One ranked row per (user, track, day, time range). Re-running a day's sync updates
-- these rows through the unique key; it never adds a second one.
CREATE TABLE IF NOT EXISTS snapshots (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_id      text NOT NULL REFERENCES tracks (spotify_id),
    snapshot_date date NOT NULL,
    time_range    text NOT NULL CHECK (time_range IN ('short_term', 'medium_term', 'long_term')),
    rank          integer NOT NULL CHECK (rank > 0),
    CONSTRAINT snapshots_one_row_per_track
        UNIQUE (user_id, track_id, snapshot_date, time_range),
    -- Deferred so a same-day re-sync can swap two ranks inside one transaction. Its
    -- index (user, range, date) is also the one the taste-over-time charts read.
    CONSTRAINT snapshots_one_track_per_rank
        UNIQUE (user_id, time_range, snapshot_date, rank) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX IF NOT EXISTS snapshots_track_idx ON snapshots (track_id);

-- A user's library ("Liked Songs").
CREATE TABLE IF NOT EXISTS saved_tracks (
    user_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_id text NOT NULL REFERENCES tracks (spotify_id),
    added_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, track_id)
);
CREATE INDEX IF NOT EXISTS saved_tracks_added_idx ON saved_tracks (user_id, added_at);
CREATE INDEX IF NOT EXISTS saved_tracks_track_idx ON saved_tracks (track_id);

-- One row per play a person made, whoever learnt of it: a Spotify data export (years of
-- history) or the capture of recently played (Spotify only remembers the last 50).
--
-- Identity: a person finishes at most one play per second, so (user_id, played_at) is the
-- play. played_at is when playback ENDED, in UTC, truncated to the second (an export's `ts`
-- and recently played's `played_at` both mark the end). Writers truncate before insert, so
-- the same play from two sources collides on the key instead of being counted twice; a
-- basic export (minute precision, names only) is matched to a known play by the importer.
-- track_id is NULL for a local file or a row no track is known for yet: the names then say
-- what it was. Nothing private from an export (IP address, user agent, username) is kept.
CREATE TABLE IF NOT EXISTS plays (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    played_at timestamptz NOT NULL,
    track_id  text REFERENCES tracks (spotify_id),
    PRIMARY KEY (user_id, played_at)
);
CREATE INDEX IF NOT EXISTS plays_track_idx ON plays (track_id);
-- version 5: the facts of a play, for databases created before it (all nullable: a
-- captured play knows only its track and end time)
ALTER TABLE plays ALTER COLUMN track_id DROP NOT NULL;
ALTER TABLE plays ADD COLUMN IF NOT EXISTS ms_played    integer CHECK (ms_played >= 0);
ALTER TABLE plays ADD COLUMN IF NOT EXISTS track_name   text;   -- as the source named it
ALTER TABLE plays ADD COLUMN IF NOT EXISTS artist_name  text;
ALTER TABLE plays ADD COLUMN IF NOT EXISTS album_name   text;
ALTER TABLE plays ADD COLUMN IF NOT EXISTS reason_start text;
ALTER TABLE plays ADD COLUMN IF NOT EXISTS reason_end   text;
ALTER TABLE plays ADD COLUMN IF NOT EXISTS skipped      boolean;
ALTER TABLE plays ADD COLUMN IF NOT EXISTS shuffle      boolean;
ALTER TABLE plays ADD COLUMN IF NOT EXISTS offline      boolean;
ALTER TABLE plays ADD COLUMN IF NOT EXISTS platform     text;
ALTER TABLE plays ADD COLUMN IF NOT EXISTS country      text;   -- conn_country, two letters
-- polling: recently played; export: extended streaming history; export_basic: account data
ALTER TABLE plays ADD COLUMN IF NOT EXISTS source       text NOT NULL DEFAULT 'polling';
DO $$ BEGIN
    ALTER TABLE plays ADD CONSTRAINT plays_source_known CHECK (source IN ('polling', 'export', 'export_basic'));
    ALTER TABLE plays ADD CONSTRAINT plays_names_a_track CHECK (track_id IS NOT NULL OR track_name IS NOT NULL);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
-- version 5: plays captured before it kept Spotify's milliseconds; to the second, like new ones
UPDATE plays p SET played_at = date_trunc('second', p.played_at)
WHERE p.played_at <> date_trunc('second', p.played_at)
  AND NOT EXISTS (SELECT 1 FROM plays q WHERE q.user_id = p.user_id AND q.played_at = date_trunc('second', p.played_at));
-- version 5: a track first named by an export (URI and names, no full object yet) is stored
-- at once with what the export says and fetched whole later, one GET /tracks/{id} at a time
ALTER TABLE tracks ADD COLUMN IF NOT EXISTS needs_enrichment boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS tracks_needs_enrichment_idx ON tracks (spotify_id) WHERE needs_enrichment;

-- Playlists the app built (or imported from a legacy install).
CREATE TABLE IF NOT EXISTS playlists (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('time_machine', 'forgotten_gems', 'obsessed', 'mood', 'legacy')),
    name        text NOT NULL CHECK (name <> ''),
    parameters  jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(parameters) = 'object'),
    spotify_id  text UNIQUE,               -- NULL until written to Spotify
    legacy_key  text,                      -- e.g. "playlist_2020_december" from a SQLite install
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT playlists_one_legacy_key_per_user UNIQUE (user_id, legacy_key)
);
CREATE INDEX IF NOT EXISTS playlists_user_idx ON playlists (user_id, created_at);

CREATE TABLE IF NOT EXISTS playlist_tracks (
    playlist_id bigint NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    track_id    text NOT NULL REFERENCES tracks (spotify_id),
    position    integer NOT NULL CHECK (position >= 0),
    added_at    timestamptz,               -- when the entry was added (legacy imports keep theirs)
    PRIMARY KEY (playlist_id, track_id)
);
ALTER TABLE playlist_tracks ADD COLUMN IF NOT EXISTS added_at timestamptz;  -- databases made before it
CREATE INDEX IF NOT EXISTS playlist_tracks_track_idx ON playlist_tracks (track_id);

-- One row per sync: progress for the page that polls it, the summary, or what failed.
-- The partial unique index allows one running sync per user at a time.
CREATE TABLE IF NOT EXISTS sync_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    stage       text NOT NULL DEFAULT 'starting',
    summary     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(summary) = 'object'),
    error       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    worker       text,                                  -- "host:pid" of the process running it
    heartbeat_at timestamptz NOT NULL DEFAULT now(),    -- moved by every progress report
    CONSTRAINT sync_runs_finished_when_done CHECK ((status = 'running') = (finished_at IS NULL))
);
-- version 3, for databases created at version 2
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS worker text;
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz NOT NULL DEFAULT now();
CREATE UNIQUE INDEX IF NOT EXISTS sync_runs_one_running_per_user ON sync_runs (user_id) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS sync_runs_user_idx ON sync_runs (user_id, started_at DESC);

-- version 7: imports of Spotify data exports (history/). One row per import: its progress
-- for the page that polls it (rows and bytes done, so rate and ETA), then its summary or
-- what failed. The partial unique index allows one queued or running import per user.
CREATE TABLE IF NOT EXISTS history_imports (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'uploading'
                 CHECK (status IN ('uploading', 'queued', 'running', 'succeeded', 'failed')),
    stage        text NOT NULL DEFAULT '',
    files        jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(files) = 'array'),  -- [{name, bytes}]
    bytes_total  bigint NOT NULL DEFAULT 0 CHECK (bytes_total >= 0),
    bytes_done   bigint NOT NULL DEFAULT 0 CHECK (bytes_done >= 0),
    rows_done    bigint NOT NULL DEFAULT 0 CHECK (rows_done >= 0),
    summary      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(summary) = 'object'),
    error        text,
    worker       text,                                  -- "host:pid" of the process running it
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    heartbeat_at timestamptz NOT NULL DEFAULT now(),    -- moved by every progress report
    finished_at  timestamptz,
    CONSTRAINT history_imports_finished_when_done
        CHECK ((status IN ('succeeded', 'failed')) = (finished_at IS NOT NULL))
);
-- the folder its uploads wait in (instance/history-uploads/<key>/): not the id, which a
-- second database sharing the instance folder would hand out again
ALTER TABLE history_imports ADD COLUMN IF NOT EXISTS upload_key uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX IF NOT EXISTS history_imports_one_active_per_user
    ON history_imports (user_id) WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS history_imports_user_idx ON history_imports (user_id, created_at DESC);

-- version 7: every export file a user imported, by the SHA-256 of its bytes, so importing
-- the same file again is recognised before it is parsed (and says so). The plays' own
-- identity still dedupes anything a fingerprint misses (a file re-saved, an overlapping
-- export). Nothing of the file's content is kept here.
CREATE TABLE IF NOT EXISTS history_import_files (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    byte_size   bigint NOT NULL CHECK (byte_size >= 0),
    kind        text NOT NULL,
    rows        integer NOT NULL CHECK (rows >= 0),
    import_id   bigint REFERENCES history_imports (id) ON DELETE SET NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, sha256)
);

-- version 11: compute once per change, not once per view (issue 15).
--
-- A person's charts are pure functions of their rows (snapshots, saved_tracks, plays), of
-- the shared catalogue those rows point at (tracks, artists) and of the request's
-- parameters. users.data_version moves whenever their rows change and
-- catalogue_version.version whenever the catalogue's facts change, each IN THE SAME
-- TRANSACTION as the change, so a reader that sees the new rows also sees the new number.
-- chart_cache keeps one computed answer per (user, chart, parameters) with the stamp it
-- was computed under (versions, app version, the day for "last N months"); an answer whose
-- stamp differs from the current one is never served, only recomputed and replaced.
--
-- Triggers, not each writer's good memory, move the numbers: a statement trigger per
-- table with a transition table (one UPDATE of users per statement, however many rows),
-- so the sync, the history import, the capture jobs, the migration and a psql session
-- all invalidate alike. A statement that changes nothing (a re-sync of the same data)
-- moves nothing. users_db.bump_data_version() is for writers of anything else a chart
-- reads (a setting such as the time zone).
ALTER TABLE users ADD COLUMN IF NOT EXISTS data_version bigint NOT NULL DEFAULT 0;

-- One row. Catalogue edits are rare (Spotify corrected a name, audio features or an
-- export's track fetched whole) and change many people's charts, so they move one
-- global number instead of every affected person's.
CREATE TABLE IF NOT EXISTS catalogue_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  bigint NOT NULL DEFAULT 0
);
INSERT INTO catalogue_version DEFAULT VALUES ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS chart_cache (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chart       text NOT NULL,          -- dashboard.CHARTS name, or a page's name
    params      text NOT NULL,          -- the request's parameters, canonical
    stamp       text NOT NULL,          -- what it was computed under (chart_cache.Stamp)
    body        jsonb NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, chart, params)
);

-- Users locked in id order, so two bulk statements over several people never deadlock.
CREATE OR REPLACE FUNCTION bump_data_versions(user_ids bigint[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE users u SET data_version = u.data_version + 1
    FROM (SELECT id FROM users WHERE id = ANY (user_ids) ORDER BY id FOR UPDATE) AS locked
    WHERE u.id = locked.id;
$$;
-- One function for the three events: each branch reads only the transition tables its
-- event has (PL/pgSQL plans a statement when it first runs it).
CREATE OR REPLACE FUNCTION bump_data_version_after_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM bump_data_versions(ARRAY(SELECT DISTINCT user_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM bump_data_versions(ARRAY(SELECT DISTINCT user_id FROM old_rows));
    ELSE
        PERFORM bump_data_versions(ARRAY(SELECT user_id FROM new_rows UNION SELECT user_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;
DO $$
DECLARE
    person_table text;
BEGIN
    FOREACH person_table IN ARRAY ARRAY['snapshots', 'saved_tracks', 'plays'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %1$s_bump_data_version_after_insert
            AFTER INSERT ON %1$I REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version_after_write()', person_table);
        EXECUTE format('CREATE OR REPLACE TRIGGER %1$s_bump_data_version_after_update
            AFTER UPDATE ON %1$I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version_after_write()', person_table);
        EXECUTE format('CREATE OR REPLACE TRIGGER %1$s_bump_data_version_after_delete
            AFTER DELETE ON %1$I REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version_after_write()', person_table);
    END LOOP;
END $$;
-- version 11's first three trigger functions, of one shape, now bump_data_version_after_write()
DROP FUNCTION IF EXISTS bump_data_version_after_insert();
DROP FUNCTION IF EXISTS bump_data_version_after_update();
DROP FUNCTION IF EXISTS bump_data_version_after_delete();

-- The catalogue's number moves at COMMIT (a deferred constraint trigger), once per
-- transaction: taking that one row's lock in the middle of a sync's sorted track upserts
-- could deadlock two syncs (each holding tracks the other wants, one waiting for the
-- row); at commit every track lock is already held. Only changes of what a page shows
-- count (an INSERT is a new track nobody's charts had yet). The WHEN is a plain OR chain,
-- not a row comparison: the migration re-creates triggers from pg_get_triggerdef(), and a
-- row comparison does not survive that round trip to the letter.
CREATE OR REPLACE FUNCTION bump_catalogue_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('music_time_machine.catalogue_bumped', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('music_time_machine.catalogue_bumped', 'yes', true);
        UPDATE catalogue_version SET version = version + 1;
    END IF;
    RETURN NULL;
END $$;
DO $$ BEGIN
    CREATE CONSTRAINT TRIGGER tracks_bump_catalogue_version_after_update
        AFTER UPDATE ON tracks DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (OLD.name IS DISTINCT FROM NEW.name
              OR OLD.artist_name IS DISTINCT FROM NEW.artist_name
              OR OLD.primary_artist_id IS DISTINCT FROM NEW.primary_artist_id
              OR OLD.album_name IS DISTINCT FROM NEW.album_name
              OR OLD.duration_ms IS DISTINCT FROM NEW.duration_ms
              OR OLD.release_date IS DISTINCT FROM NEW.release_date
              OR OLD.release_date_precision IS DISTINCT FROM NEW.release_date_precision
              OR OLD.explicit IS DISTINCT FROM NEW.explicit
              OR OLD.popularity IS DISTINCT FROM NEW.popularity
              OR OLD.spotify_url IS DISTINCT FROM NEW.spotify_url
              OR OLD.raw_json IS DISTINCT FROM NEW.raw_json
              OR OLD.audio_features IS DISTINCT FROM NEW.audio_features)
        EXECUTE FUNCTION bump_catalogue_version();
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$ BEGIN
    CREATE CONSTRAINT TRIGGER tracks_bump_catalogue_version_after_delete
        AFTER DELETE ON tracks DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        EXECUTE FUNCTION bump_catalogue_version();
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$ BEGIN
    CREATE CONSTRAINT TRIGGER artists_bump_catalogue_version_after_update
        AFTER UPDATE ON artists DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (OLD.name IS DISTINCT FROM NEW.name)
        EXECUTE FUNCTION bump_catalogue_version();
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- version 8: listening insights from plays. The person's time zone (an IANA name the
-- browser reports once, checked against pg_timezone_names; NULL until then, read as UTC)
-- puts plays on their own days and hours.
INSERT INTO schema_version (version, description)
VALUES (8, 'users.time_zone; play_hours, play_month_tracks, play_tracks and play_rollup_dirty: listening rollups')
ON CONFLICT (version) DO NOTHING;
ALTER TABLE users ADD COLUMN IF NOT EXISTS time_zone text;
-- version 8: rollups of plays for the listening charts, so that a heavy listener's ten
-- years (300,000 plays) are charted from a few thousand rows instead of every play. Both
-- are in the person's local time and hold only what plays say; plays stay the truth:
-- - play_hours: per local day and hour, plays, milliseconds (a captured play without
--   ms_played counts its track's length) and skips (see plays_insights_db);
-- - play_month_tracks: per local month and track (a local file by its names), the same
--   sums and the month's first play of it;
-- Writers of plays never touch them: a statement trigger only notes which local months
-- of whom changed (play_rollup_dirty, no unique key, so concurrent writers never wait on
-- each other), and readers recompute those months from plays before charting
-- (plays_insights_db.refresh_rollups). A time zone change marks everything (month NULL).
CREATE TABLE IF NOT EXISTS play_hours (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day        date NOT NULL,
    hour       smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    plays      integer NOT NULL,
    ms         bigint NOT NULL,
    skipped    integer NOT NULL,
    skip_known integer NOT NULL,
    PRIMARY KEY (user_id, day, hour)
);
CREATE TABLE IF NOT EXISTS play_month_tracks (
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    month        date NOT NULL,
    track_id     text,              -- NULL: a play without a track id, named below
    local_track  text,
    local_artist text,
    local_album  text,
    plays        integer NOT NULL,
    ms           bigint NOT NULL,
    skips        integer NOT NULL,
    first_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS play_month_tracks_user_month_idx
    ON play_month_tracks (user_id, month) INCLUDE (track_id, plays, ms, skips, first_at);
-- - play_tracks: per track, the whole history's sums and its first play ever (what "all
--   history" and discoveries read: a person's distinct tracks, not their months × tracks)
CREATE TABLE IF NOT EXISTS play_tracks (
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_id     text,
    local_track  text,
    local_artist text,
    local_album  text,
    plays        integer NOT NULL,
    ms           bigint NOT NULL,
    skips        integer NOT NULL,
    first_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS play_tracks_user_idx ON play_tracks (user_id, track_id);
-- no foreign key: a cascade deleting a person's plays must not note rows for them
CREATE TABLE IF NOT EXISTS play_rollup_dirty (
    user_id bigint NOT NULL,
    month   date                    -- NULL: every month
);
CREATE INDEX IF NOT EXISTS play_rollup_dirty_user_idx ON play_rollup_dirty (user_id);
CREATE OR REPLACE FUNCTION note_changed_play_months() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO play_rollup_dirty (user_id, month)
    SELECT DISTINCT c.user_id, date_trunc('month', c.played_at AT TIME ZONE coalesce(u.time_zone, 'UTC'))::date
    FROM changed_plays c JOIN users u ON u.id = c.user_id;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER plays_note_months_after_insert
    AFTER INSERT ON plays REFERENCING NEW TABLE AS changed_plays
    FOR EACH STATEMENT EXECUTE FUNCTION note_changed_play_months();
CREATE OR REPLACE TRIGGER plays_note_old_months_after_update
    AFTER UPDATE ON plays REFERENCING OLD TABLE AS changed_plays
    FOR EACH STATEMENT EXECUTE FUNCTION note_changed_play_months();
CREATE OR REPLACE TRIGGER plays_note_new_months_after_update
    AFTER UPDATE ON plays REFERENCING NEW TABLE AS changed_plays
    FOR EACH STATEMENT EXECUTE FUNCTION note_changed_play_months();
CREATE OR REPLACE TRIGGER plays_note_months_after_delete
    AFTER DELETE ON plays REFERENCING OLD TABLE AS changed_plays
    FOR EACH STATEMENT EXECUTE FUNCTION note_changed_play_months();
-- plays written before version 8: everyone's rollups are built on first read
INSERT INTO play_rollup_dirty (user_id, month)
SELECT DISTINCT user_id, NULL::date FROM plays
WHERE NOT EXISTS (SELECT FROM play_hours) AND NOT EXISTS (SELECT FROM play_rollup_dirty);

-- version 9: background work (jobs/). The job engine's own tables (procrastinate_*) come
-- from the engine's schema, which init-db applies after this file (database.apply_schema).

-- A sync's job: while it is queued or running the run is alive, whatever worker has it.
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS job_id bigint;

-- One Spotify rate budget for the whole deployment (Spotify limits an app, not a worker):
-- one row, read or moved before every Web API call by every worker on every machine.
CREATE TABLE IF NOT EXISTS spotify_rate_budget (
    id                   smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    blocked_until        timestamptz NOT NULL DEFAULT '-infinity',  -- a 429's Retry-After
    next_slot_at         timestamptz NOT NULL DEFAULT '-infinity',  -- SPOTIFY_MAX_RPS spacing
    quota_exceeded_until timestamptz NOT NULL DEFAULT '-infinity',  -- 429 QUOTA_EXCEEDED
    quota_message        text,
    rate_limited_total   bigint NOT NULL DEFAULT 0 CHECK (rate_limited_total >= 0),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
INSERT INTO spotify_rate_budget (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- Recently-played capture per person: Spotify keeps only the last 50 plays, so capture
-- asks every CAPTURE_INTERVAL seconds for what came after the newest play it has seen.
CREATE TABLE IF NOT EXISTS capture_state (
    user_id          bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    after_ms         bigint CHECK (after_ms >= 0),   -- Spotify's `after` cursor (ms since the epoch)
    next_capture_at  timestamptz NOT NULL DEFAULT now(),
    last_captured_at timestamptz,
    last_new_plays   integer NOT NULL DEFAULT 0 CHECK (last_new_plays >= 0),
    failures         integer NOT NULL DEFAULT 0 CHECK (failures >= 0),  -- in a row
    last_error       text,                           -- what the person reads on /settings
    last_error_at    timestamptz
);
CREATE INDEX IF NOT EXISTS capture_state_due_idx ON capture_state (next_capture_at);

-- A capture that found a full page of new plays: more than 50 may have been played since
-- the last one, and Spotify no longer has those in between. Recorded, and shown.
CREATE TABLE IF NOT EXISTS play_gaps (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    after_play  timestamptz NOT NULL,  -- the newest play known before the gap
    before_play timestamptz NOT NULL,  -- the oldest play the capture still got
    detected_at timestamptz NOT NULL DEFAULT now(),
    CHECK (after_play < before_play),
    UNIQUE (user_id, after_play)
);

-- version 12: a history import is a job any worker on any machine may run, so the files a
-- person uploads wait in the database, not in the web machine's instance folder. A file
-- is written in chunks of history/uploads.py's CHUNK_BYTES, one short transaction each
-- (a slow upload never holds a transaction open), and counts once ``complete``; the
-- import's worker reads it back chunk by chunk (a zip needs to seek). Deleted in the
-- transaction that records the import's outcome; housekeeping removes abandoned ones.
CREATE TABLE IF NOT EXISTS history_upload_files (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    import_id  bigint NOT NULL REFERENCES history_imports (id) ON DELETE CASCADE,
    name       text NOT NULL,                  -- as shown (archive.display_name)
    bytes      bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    complete   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS history_upload_files_import_idx ON history_upload_files (import_id, id);
CREATE TABLE IF NOT EXISTS history_upload_chunks (
    file_id  bigint NOT NULL REFERENCES history_upload_files (id) ON DELETE CASCADE,
    chunk_no integer NOT NULL CHECK (chunk_no >= 0),
    data     bytea NOT NULL,
    PRIMARY KEY (file_id, chunk_no)
);
-- zips and JSON an upload carries: stored out of line without a second compression
ALTER TABLE history_upload_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
-- version 12: the job running the import (procrastinate_jobs.id): while it is waiting or
-- running (retries included) the import is alive, whatever its heartbeat says
ALTER TABLE history_imports ADD COLUMN IF NOT EXISTS job_id bigint;

-- version 18: artist and album pages, and rebuilding a playlist in place (issue 16).
-- An artist is found by the ids its tracks credit (every credited artist, not only the
-- first), an album by its id, both in the stored track JSON; a track an export only named
-- (no JSON yet) by its artist's name. The person's own rows then decide what is theirs.
INSERT INTO schema_version (version, description)
VALUES (18, 'artist and album lookups on tracks and plays; playlists.updated_at')
ON CONFLICT (version) DO NOTHING;
CREATE INDEX IF NOT EXISTS tracks_artist_ids_idx ON tracks USING gin (jsonb_path_query_array(raw_json, '$.artists[*].id'));
CREATE INDEX IF NOT EXISTS tracks_album_id_idx ON tracks ((raw_json->'album'->>'id'));
CREATE INDEX IF NOT EXISTS tracks_named_artist_idx ON tracks (lower(artist_name)) WHERE raw_json = '{}'::jsonb;
-- plays without a track (a local file, an account-data row no track matched) by their names
CREATE INDEX IF NOT EXISTS plays_named_artist_idx ON plays (user_id, lower(artist_name)) WHERE track_id IS NULL;
-- when the playlist's items on Spotify were last replaced ("update it" instead of a duplicate)
ALTER TABLE playlists ADD COLUMN IF NOT EXISTS updated_at timestamptz;
CREATE INDEX IF NOT EXISTS artists_lower_name_idx ON artists (lower(name));

-- version 14: the listening charts' per-track rollups carry the names they are charted by,
-- and a per-year rollup, so that a top list, a year's totals or discoveries sum a few
-- thousand rows of one table instead of naming every track from the catalogue per view.
--   track_name / artist_name / album_name: what plays_insights_db names the track by (the
--   catalogue's track and primary artist, else the export's names), resolved when the
--   month is rolled up; a catalogue change of those facts (or of duration_ms, which a
--   captured play counts) notes every month with a play of the track as changed, in the
--   same transaction, so the next refresh renames (and re-measures) them.
--   play_year_tracks: per local year and track, the sums of its months.
INSERT INTO schema_version (version, description)
VALUES (14, 'play_year_tracks; names in play_month_tracks and play_tracks, noted on catalogue changes')
ON CONFLICT (version) DO NOTHING;
ALTER TABLE play_month_tracks ADD COLUMN IF NOT EXISTS track_name text,
    ADD COLUMN IF NOT EXISTS artist_name text, ADD COLUMN IF NOT EXISTS album_name text;
ALTER TABLE play_tracks ADD COLUMN IF NOT EXISTS track_name text,
    ADD COLUMN IF NOT EXISTS artist_name text, ADD COLUMN IF NOT EXISTS album_name text;
CREATE TABLE IF NOT EXISTS play_year_tracks (
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    year         date NOT NULL,     -- 1 January, local
    track_id     text,
    local_track  text,
    local_artist text,
    local_album  text,
    track_name   text,
    artist_name  text,
    album_name   text,
    plays        integer NOT NULL,
    ms           bigint NOT NULL,
    skips        integer NOT NULL
);
CREATE INDEX IF NOT EXISTS play_year_tracks_user_year_idx ON play_year_tracks (user_id, year);
CREATE INDEX IF NOT EXISTS play_tracks_user_first_idx ON play_tracks (user_id, first_at);
-- the day-and-hour charts read the rollup's sums from the index alone
CREATE INDEX IF NOT EXISTS play_hours_sums_idx ON play_hours (user_id, day) INCLUDE (hour, plays, ms, skipped, skip_known);
-- a track's own facts, or the name of the artist that is the primary one of tracks
CREATE OR REPLACE FUNCTION note_renamed_track_months() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO play_rollup_dirty (user_id, month)
    SELECT DISTINCT p.user_id, date_trunc('month', p.played_at AT TIME ZONE coalesce(u.time_zone, 'UTC'))::date
    FROM plays p JOIN users u ON u.id = p.user_id
    WHERE p.track_id IN (SELECT NEW.spotify_id WHERE TG_TABLE_NAME = 'tracks'
                         UNION ALL
                         SELECT t.spotify_id FROM tracks t
                         WHERE TG_TABLE_NAME = 'artists' AND t.primary_artist_id = NEW.spotify_id);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER tracks_note_renamed_months_after_update
    AFTER UPDATE ON tracks FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name
          OR OLD.artist_name IS DISTINCT FROM NEW.artist_name
          OR OLD.primary_artist_id IS DISTINCT FROM NEW.primary_artist_id
          OR OLD.album_name IS DISTINCT FROM NEW.album_name
          OR OLD.duration_ms IS DISTINCT FROM NEW.duration_ms)
    EXECUTE FUNCTION note_renamed_track_months();
CREATE OR REPLACE TRIGGER artists_note_renamed_months_after_update
    AFTER UPDATE ON artists FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION note_renamed_track_months();
-- rollups built before version 14 have no names and no years: rebuilt on first read
INSERT INTO play_rollup_dirty (user_id, month)
SELECT DISTINCT user_id, NULL::date FROM play_tracks
WHERE NOT EXISTS (SELECT FROM play_year_tracks) AND NOT EXISTS (SELECT FROM play_rollup_dirty WHERE month IS NULL);

-- version 19: the mood playlist is offered only when some of the person's tracks have audio
-- features. Spotify no longer sends them to new apps (November 2024), so usually none has
-- any: this index of the few that do answers "any at all?" at once, instead of the question
-- walking all of a heavy listener's plays to find none.
INSERT INTO schema_version (version, description)
VALUES (19, 'an index of the tracks that have audio features')
ON CONFLICT (version) DO NOTHING;
CREATE INDEX IF NOT EXISTS tracks_with_audio_features_idx ON tracks (spotify_id) WHERE audio_features IS NOT NULL;

-- version 20: play_artists (and play_albums, below), per artist the whole history's sums
-- and first play (what "all history"'s top artists and totals, and every period's
-- discoveries, read: a few thousand rows instead of grouping every track row of the
-- person's history by artist per view).
-- An artist is the name the per-track rollups chart a track by (artist_name there); kept
-- by the same refresh, from play_tracks. Names may be long (an export's, up to 1,000
-- characters): no unique index on them, the refresh deletes before it inserts.
INSERT INTO schema_version (version, description)
VALUES (20, 'play_artists and play_albums: whole-history rollups per artist and per album')
ON CONFLICT (version) DO NOTHING;
CREATE TABLE IF NOT EXISTS play_artists (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    artist_name text NOT NULL,
    plays       integer NOT NULL,
    ms          bigint NOT NULL,
    skips       integer NOT NULL,
    first_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS play_artists_user_first_idx ON play_artists (user_id, first_at);
-- a refresh re-sums the whole history of the tracks a change touched from their months:
-- found by track, not by reading every month row of the person
CREATE INDEX IF NOT EXISTS play_month_tracks_track_idx ON play_month_tracks (user_id, track_id);
-- play_albums: the same per album (its name and artist, as the charts name them), for all
-- history's top albums
CREATE TABLE IF NOT EXISTS play_albums (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    album_name  text NOT NULL,
    artist_name text,
    plays       integer NOT NULL,
    ms          bigint NOT NULL,
    skips       integer NOT NULL,
    first_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS play_albums_user_idx ON play_albums (user_id);
-- the whole history's top tracks by plays and by minutes, read off in order (the first ten,
-- not every track the person ever played)
CREATE INDEX IF NOT EXISTS play_tracks_top_plays_idx ON play_tracks (user_id, plays DESC, ms DESC);
CREATE INDEX IF NOT EXISTS play_tracks_top_ms_idx ON play_tracks (user_id, ms DESC, plays DESC);
-- an install from before version 20: both built once from the per-track rollup (a
-- person's months still noted as changed are re-rolled, their artists and albums with them,
-- on the next view)
INSERT INTO play_artists (user_id, artist_name, plays, ms, skips, first_at)
SELECT user_id, artist_name, sum(plays), sum(ms), sum(skips), min(first_at)
FROM play_tracks
WHERE artist_name IS NOT NULL AND NOT EXISTS (SELECT FROM play_artists)
GROUP BY user_id, artist_name;
INSERT INTO play_albums (user_id, album_name, artist_name, plays, ms, skips, first_at)
SELECT user_id, album_name, artist_name, sum(plays), sum(ms), sum(skips), min(first_at)
FROM play_tracks
WHERE album_name IS NOT NULL AND NOT EXISTS (SELECT FROM play_albums)
GROUP BY user_id, album_name, artist_name;
