-- Remote artwork (issue 10 item 3, issue 13 item 3): a remote metadata provider names an
-- image by URL; images_process downloads it (size cap, content-type check) and makes its
-- variants like any other source. source_url is where it is fetched from; a remote row
-- without one could never be processed.
ALTER TABLE images
    ADD COLUMN source_url text CHECK (source_url ~ '^https?://' AND length(source_url) <= 2048),
    ADD CONSTRAINT images_remote_url CHECK (source <> 'remote' OR source_url IS NOT NULL);
