-- Image variants are files in the data folder (content-addressed by images_process:
-- images/<hash[:2]>/<hash>/<width>.webp), served by GET /api/v1/images/{id}?w= through the
-- HTTP layer's file response (its strong ETag, Range, 304), not bytea rows: a poster
-- answer is then a sendfile, and the database stays small. Nothing wrote the old bytea
-- rows (no images_process existed before this file).
DELETE FROM image_variants;
ALTER TABLE image_variants
    DROP COLUMN data,
    DROP COLUMN etag,
    ADD COLUMN height integer NOT NULL CHECK (height > 0),
    ADD COLUMN size   bigint  NOT NULL CHECK (size >= 0),
    ADD COLUMN file   text    NOT NULL CHECK (file !~ '(^/|\.\.)');
-- the cleanup step keeps a content folder while some image names its hash
CREATE INDEX images_content_hash_idx ON images (content_hash) WHERE content_hash IS NOT NULL;
